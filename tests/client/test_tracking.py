"""What ``inferq wait`` accepts as an inference, and how its downloads are named."""

from __future__ import annotations

import json

from inferq.client.tracking import Status, name_downloads, tracked_from

OUT = "s3://b/output/1234.out"
FAIL = "s3://b/failure/1234-error.out"


def test_a_record_printed_by_invoke() -> None:
    line = json.dumps(
        {"InferenceId": "i", "OutputLocation": OUT, "FailureLocation": FAIL, "Other": 1}
    )

    item = tracked_from(line)

    assert (item.output, item.failure, item.status) == (OUT, FAIL, Status.PENDING)
    assert item.answer() == {
        "InferenceId": "i",
        "OutputLocation": OUT,
        "FailureLocation": FAIL,
        "Status": "Pending",
    }


def test_bare_locations() -> None:
    assert (tracked_from(OUT).output, tracked_from(OUT).failure) == (OUT, None)
    assert tracked_from(json.dumps(OUT)).output == OUT
    pair = tracked_from(f"{OUT},{FAIL}\n")
    assert (pair.output, pair.failure) == (OUT, FAIL)


def test_an_error_line_is_already_failed() -> None:
    line = json.dumps({"Error": {"Code": "ValidationError", "Message": "no such endpoint"}})

    item = tracked_from(line)

    assert item.status is Status.FAILED
    assert item.reason == "ValidationError: no such endpoint"


def test_unreadable_inputs_are_failed_with_the_reason() -> None:
    for text in ["demo", "{nope", "[1]", '{"OutputLocation": "https://x/y"}', "s3://bucket-only"]:
        item = tracked_from(text)
        assert item.status is Status.FAILED, text
        assert (item.reason or "").startswith("InvalidInput: "), text


def test_downloads_are_named_after_unique_inputs() -> None:
    def with_input(location: str | None, n: int) -> str:
        record = {
            "OutputLocation": f"s3://b/o/{n}.out",
            "FailureLocation": f"s3://b/f/{n}-error.out",
        }
        return json.dumps({**record, "InputLocation": location} if location else record)

    items = [
        tracked_from(with_input("s3://b/in/cat.json", 1)),
        tracked_from(with_input("s3://b/in/a/same.json", 2)),
        tracked_from(with_input("s3://b/in/b/same.json", 3)),
        tracked_from(with_input(None, 4)),
    ]

    name_downloads(items)

    assert [item.names for item in items] == [
        ("cat.json.out", "cat.json-error.out"),
        ("2.out", "2-error.out"),
        ("3.out", "3-error.out"),
        ("4.out", "4-error.out"),
    ]
