"""1. Accept path: InvokeEndpointAsync requests per second into one ``inferq serve``.

Method. ``inferq serve`` runs pinned to core 0 on a fresh data directory (SQLite state, WAL,
``synchronous=FULL``); an endpoint of the echo model is deployed with boto3 and then scaled to 0
instances, so that requests only queue and no model competes for the CPU. One
InvokeEndpointAsync request (inline 38-byte JSON body) is signed once with botocore's SigV4 and
replayed by wrk (one thread, pinned to core 1, ``bench/replay.lua``): every answer is a 202
after the request was verified and committed to disk. The peak is the best closed-loop rate at
16 and 64 connections; then wrk paces the same request (open loop, 32 connections) at 25, 50, 75
and 90% of that peak and reports p50/p99 latency. The ceiling, measured in the same run with the
same wrk settings: a bare ASGI app that reads the body and answers 202 (``bench/peers/bare.py``)
on the server stack inferq uses (uvicorn, httptools, and uvloop when installed, as ``inferq
serve`` picks it), measured before and after inferq (full mode): the better is the ceiling.
"""

from __future__ import annotations

from bench import models, procs, signing, wrk
from bench.context import Context
from bench.peers import bare
from bench.record import Section, Target
from bench.rig import ENDPOINT, serving

FRACTIONS = (0.25, 0.5, 0.75, 0.9)
QUICK_FRACTIONS = (0.5,)
TARGET = Target(text=">= 30% of bare ASGI", min_ratio=0.30)


def ceiling(ctx: Context) -> wrk.WrkResult:
    port = procs.free_port()
    command = bare.command("bench.peers.bare", port)
    with procs.running(procs.spawn(command, cpu=procs.SERVER_CPU, log=ctx.log("bare.log"))) as p:
        procs.wait_port(port, process=p)
        request = signing.plain_post(f"http://127.0.0.1:{port}/")
        wrk.warm_up(request)
        return wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)


def run(ctx: Context) -> Section:
    section = Section(key="accept", title="Accept path", method=__doc__ or "")
    bare_first = ceiling(ctx)
    with serving(ctx.scratch("accept")) as server:
        server.deploy(models.source("echo"))
        server.scale(0)
        request = signing.invoke_async(server.url, ENDPOINT)
        wrk.warm_up(request)
        peak = wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)
        fractions = QUICK_FRACTIONS if ctx.quick else FRACTIONS
        paced = [
            wrk.run(request, seconds=ctx.seconds, connections=32, rate=peak.rate * fraction)
            for fraction in fractions
        ]
        queued = server.pending()
    # a ceiling is the best the machine gives: measure it again, after inferq, keep the best
    bare_peak = bare_first if ctx.quick else max(bare_first, ceiling(ctx), key=lambda r: r.rate)
    accepted = peak.requests + sum(r.requests for r in paced)
    section.add(
        "InvokeEndpointAsync accepted/s (peak)", peak.rate, "req/s",
        reference=bare_peak.rate, reference_name="bare ASGI 202 (same stack)", target=TARGET,
        note=f"{peak.failed} errors; {queued:,} requests queued in SQLite at the end",
    )  # fmt: skip
    for fraction, result in zip(fractions, paced, strict=True):
        for q in (50, 99):
            section.add(
                f"latency p{q} at {fraction:.0%} of peak ({result.rate:,.0f} req/s)",
                result.latency_ms(q), "ms",
            )  # fmt: skip
    section.add("bare ASGI latency p50 at its peak", bare_peak.latency_ms(50), "ms")
    section.series = {
        "bare_peak": bare_peak.as_dict(),
        "peak": peak.as_dict(),
        "paced": [r.as_dict() for r in paced],
        "accepted_total": accepted,
    }
    return section
