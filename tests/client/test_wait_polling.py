"""The polling loop of ``inferq wait``: backoff, timeout, exit status, progress bar."""

from __future__ import annotations

import io
import json
import time

import pytest
from tests.client.cli import inferq, json_lines

from inferq.client.progress import ProgressBar, duration, wanted
from inferq.client.tracking import Status, Tracked
from inferq.client.wait import Polling, exit_status, poll_until_settled


def test_backoff_doubles_to_the_maximum_and_resets_on_progress() -> None:
    polling = Polling(interval=1, max_interval=5)

    assert polling.next_delay(1, progressed=False) == 2
    assert polling.next_delay(4, progressed=False) == 5
    assert polling.next_delay(5, progressed=True) == 1


def test_polls_until_every_item_settles() -> None:
    items = [Tracked(output=f"s3://b/{n}.out") for n in range(3)]
    rounds: list[int] = []

    def check(item: Tracked) -> bool:
        rounds.append(len(rounds))
        if len(rounds) > 4:
            item.status = Status.COMPLETED
            return True
        return False

    assert poll_until_settled(items, check, Polling(interval=0.01, max_interval=0.02))
    assert {item.status for item in items} == {Status.COMPLETED}


def test_stops_at_the_timeout() -> None:
    items = [Tracked(output="s3://b/k.out")]
    started = time.monotonic()

    settled = poll_until_settled(items, lambda _: False, Polling(interval=0.05, timeout=0.3))

    assert not settled
    assert 0.25 < time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([Status.COMPLETED, Status.COMPLETED], 0),
        ([Status.COMPLETED, Status.FAILED, Status.PENDING], 1),
        ([Status.COMPLETED, Status.PENDING], 3),
    ],
)
def test_exit_status(statuses: list[Status], code: int) -> None:
    assert exit_status([Tracked(status=s) for s in statuses]) == code


def test_progress_line() -> None:
    bar = ProgressBar("wait", 10, enabled=False)
    bar.update(done=3, failed=1)

    line = bar.line(elapsed=2.0)

    assert line.startswith("wait [#########...............] 4/10")
    assert "done 3  failed 1  pending 6  2.0/s  ETA 0:03" in line


def test_progress_only_on_a_terminal_unless_asked() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wanted(None, Terminal())
    assert not wanted(None, io.StringIO())
    assert wanted(True, io.StringIO())
    assert not wanted(False, Terminal())
    assert duration(3725) == "1:02:05"


def test_failed_invocations_and_bad_lines_fail_the_wait() -> None:
    error = json.dumps({"Error": {"Code": "ValidationError", "Message": "no such endpoint"}})

    result = inferq("wait", input=f"{error}\n\nnot-a-location\n")

    assert result.exit_code == 1
    assert [answer["Status"] for answer in json_lines(result)] == ["Failed", "Failed"]
    assert "ValidationError: no such endpoint" in result.stderr
    assert "InvalidInput: not an s3:// location: 'not-a-location'" in result.stderr
