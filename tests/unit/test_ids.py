"""inferq's batched UUIDs are proper version-4 UUIDs, distinct, in canonical text."""

from __future__ import annotations

import uuid

from inferq import ids


def test_version_4_rfc_4122_canonical_text() -> None:
    for _ in range(600):  # more than one batch of random bytes
        text = ids.uuid4()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


def test_no_repeats() -> None:
    assert len({ids.uuid4() for _ in range(50_000)}) == 50_000
