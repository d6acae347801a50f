"""What this worker knows of its own leases, so that publishing needs no database round trip.

A lease is ours until its expiry: nobody requeues it earlier. While the last grant or renewal
leaves more than a safety margin, the worker may publish without asking the database; closer to
expiry it asks (``JobQueue.extend``), which is the slow but always-correct path.
"""

from __future__ import annotations


class Leases:
    def __init__(self, margin_seconds: float) -> None:
        self._margin = margin_seconds
        self._until: dict[str, float] = {}

    def granted(self, job_id: str, until: float) -> None:
        self._until[job_id] = until

    def dropped(self, job_id: str) -> None:
        self._until.pop(job_id, None)

    def surely_held(self, job_id: str, now: float) -> bool:
        until = self._until.get(job_id)
        return until is not None and until - now > self._margin
