"""2. Dispatch overhead: from the 202 to the output object, for a model that returns at once.

Method. ``inferq serve`` on core 0 with the echo model deployed (MaxConcurrentInvocations 8);
its model server is moved to core 1, where wrk runs too. wrk replays one signed
InvokeEndpointAsync request and logs, for every 202, the wall-clock time it arrived and its
InferenceId (``replay.lua``, CLOCK_REALTIME); the server stamps ``finished_at`` in its SQLite
row right after the output object was written (fsynced and renamed into place). The overhead of
a request is ``finished_at`` minus its 202 time; ``finished_at`` minus ``started_at`` (the
claim) splits it into waiting to be claimed and running. It is measured at light load (paced,
50-100 req/s) and at half of the peak load. The peak is the rate at which one process both
accepts and completes: 1/(1/accept rate + 1/completion rate), both measured below, capped by the
completion rate reached while wrk offers that rate. Completions per second: with the endpoint
scaled to 0, a backlog is queued, then the endpoint is scaled to 1 (model server on core 1) or N
= 2 instances (model servers on either core), and the rate is completed rows over the span from
the first claim to the last finish. The ceiling, in the same run: the same model server alone on
core 1, called directly over loopback by an aiohttp client on core 0 at concurrency 8 (on uvloop
when installed, as inferq's dispatcher), each answer written to its own file
(``bench/peers/loopback.py``), measured before and after the inferq part (full mode): the better
rate is the ceiling.
"""

from __future__ import annotations

import time

from bench import models, procs, signing, stats, wrk
from bench.context import Context
from bench.peers import loopback
from bench.record import Section, Target
from bench.rig import ENDPOINT, BenchServer, overheads, read_wrk_log, serving

P50_TARGET = Target(text="<= 2 ms", max_value=2.0)
P99_TARGET = Target(text="<= 10 ms", max_value=10.0)
THROUGHPUT_TARGET = Target(text=">= 25% of direct call", min_ratio=0.25)


def paced_overheads(
    ctx: Context, server: BenchServer, request: signing.Request, rate: float, name: str
) -> tuple[wrk.WrkResult, list[tuple[float, float]]]:
    log = ctx.log(f"dispatch-{name}.tsv")
    mark = time.time()
    result = wrk.run(request, seconds=ctx.pick(10, 1), connections=32, rate=rate, log=log)
    server.wait_drained()
    return result, overheads(server, read_wrk_log(log), mark)


def completion_rate(
    ctx: Context, server: BenchServer, request: signing.Request, rate: float
) -> float:
    """Completions per second while wrk offers ``rate`` requests per second to the live
    endpoint (the first half second left out)."""
    started = time.time()
    wrk.run(request, seconds=ctx.seconds, connections=32, rate=rate)
    ended = time.time()
    window = [r for r in server.spans(started) if started + 0.5 <= r[3] <= ended]
    server.wait_drained()
    return len(window) / (ended - started - 0.5)


def drain(
    ctx: Context, server: BenchServer, request: signing.Request, n: int
) -> tuple[float, float]:
    """(accepted/s into the stopped endpoint, completions/s once ``n`` instances serve the
    queued backlog)."""
    server.scale(0)
    mark = time.time()
    accepted = wrk.run(request, seconds=ctx.pick(4, 1), connections=int(ctx.pick(16, 2))).rate
    server.scale(n)
    server.pin_models(procs.LOAD_CPU if n == 1 else None)
    server.wait_drained()
    rows = server.spans(mark)
    first, last = min(r[2] for r in rows), max(r[3] for r in rows)
    return accepted, len(rows) / (last - first)


def run(ctx: Context) -> Section:
    section = Section(key="dispatch", title="Dispatch overhead", method=__doc__ or "")
    echo = models.source("echo")
    calls, call_latencies = loopback.ceiling(
        echo, ctx.scratch("loopback"), signing.BODY, seconds=ctx.seconds
    )
    calls_first = calls
    with serving(ctx.scratch("dispatch")) as server:
        server.deploy(echo, concurrency=8)
        request = signing.invoke_async(server.url, ENDPOINT)
        accepted, drain_1 = drain(ctx, server, request, 1)
        drain_n = None if ctx.quick else drain(ctx, server, request, 2)[1]
        server.scale(1)
        server.pin_models(procs.LOAD_CPU)
        # accepting and completing share one process: the rate that uses all of it
        estimate = 1 / (1 / accepted + 1 / drain_1)
        peak = min(estimate, completion_rate(ctx, server, request, estimate))
        light, light_o = paced_overheads(ctx, server, request, ctx.pick(100, 50), "light")
        half, half_o = paced_overheads(ctx, server, request, peak / 2, "half")
    # a ceiling is the best the machine gives: measure it again, after inferq, keep the best
    if not ctx.quick:
        again = loopback.ceiling(echo, ctx.scratch("loopback-2"), signing.BODY, seconds=ctx.seconds)
        calls = max(calls, again[0])
    light_l = stats.Latency.of_seconds([total for total, _ in light_o])
    half_l = stats.Latency.of_seconds([total for total, _ in half_o])
    half_run = stats.Latency.of_seconds([run for _, run in half_o])
    call_l = stats.Latency.of_seconds(call_latencies)
    at_half = f"at half of peak ({half.rate:,.0f} of {peak:,.0f} req/s)"
    alone = "direct call + write, one caller"
    section.add(
        f"202 -> output p50 {at_half}",
        half_l.p50,
        "ms",
        target=P50_TARGET,
        reference=call_l.p50,
        reference_name=alone + ", p50",
    )
    section.add(
        f"202 -> output p99 {at_half}",
        half_l.p99,
        "ms",
        target=P99_TARGET,
        reference=call_l.p99,
        reference_name=alone + ", p99",
    )
    section.add(
        f"of which claim -> output, p50 {at_half}",
        half_run.p50,
        "ms",
        note=f"p99 {half_run.p99:.2f} ms; the rest of 202 -> output is waiting to be claimed",
    )
    section.add(
        f"202 -> output p50 at light load ({light.rate:,.0f} req/s)",
        light_l.p50,
        "ms",
        reference=call_l.p50,
        reference_name=alone + ", p50",
    )
    section.add(
        f"202 -> output p99 at light load ({light.rate:,.0f} req/s)",
        light_l.p99,
        "ms",
        reference=call_l.p99,
        reference_name=alone + ", p99",
    )
    concurrent = "direct call + file write, concurrency 8"
    section.add(
        "completions/s, 1 instance (queued backlog)",
        drain_1,
        "req/s",
        reference=calls,
        reference_name=concurrent,
        target=THROUGHPUT_TARGET,
    )
    section.add(
        "completions/s, 2 instances (queued backlog)",
        drain_n,
        "req/s",
        reference=calls,
        reference_name=concurrent,
    )
    section.add(
        "peak sustained accept + complete (1 instance)",
        peak,
        "req/s",
        reference=calls,
        reference_name=concurrent,
        note=f"estimated {estimate:,.0f}/s from accept {accepted:,.0f}/s and drain",
    )
    section.series = {
        "light_ms": stats.cdf([total * 1000 for total, _ in light_o]),
        "half_ms": stats.cdf([total * 1000 for total, _ in half_o]),
        "call_ms": stats.cdf([c * 1000 for c in call_latencies]),
        "light": light_l.as_dict(),
        "half": half_l.as_dict(),
        "call": call_l.as_dict(),
        "ceiling_calls_per_s": calls,
        "ceiling_calls_per_s_first": calls_first,
    }
    return section
