"""The instances serving one endpoint and their free invocation slots."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from inferq.runners.base import ModelInstance


@dataclass(eq=False, kw_only=True)
class Slot:
    """One model instance with its concurrency limit (MaxConcurrentInvocationsPerInstance)."""

    instance: ModelInstance
    variant: str
    capacity: int
    in_flight: int = 0
    #: set once the pool stopped sending it work (scaled in, replaced, or died)
    retired: bool = False

    @property
    def free(self) -> int:
        return 0 if self.retired or not self.instance.alive else self.capacity - self.in_flight


@dataclass(eq=False)
class InstancePool:
    slots: list[Slot] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def free(self) -> int:
        return sum(slot.free for slot in self.slots)

    def capacity(self) -> int:
        """Slots of the live instances, busy or not."""
        return sum(slot.capacity for slot in self.slots if not slot.retired and slot.instance.alive)

    def acquire(self) -> Slot | None:
        """The live instance with the most free capacity, its in-flight count taken."""
        best = max(self.slots, key=lambda slot: slot.free, default=None)
        if best is None or best.free <= 0:
            return None
        best.in_flight += 1
        return best

    def release(self, slot: Slot) -> None:
        slot.in_flight -= 1
        self.changed.set()

    def add(self, slot: Slot) -> None:
        self.slots.append(slot)
        self.changed.set()

    def retire(self, slot: Slot) -> None:
        slot.retired = True
        if slot in self.slots:
            self.slots.remove(slot)
        self.changed.set()

    def count(self, variant: str) -> int:
        return sum(1 for slot in self.slots if slot.variant == variant)

    async def wait_changed(self, timeout: float) -> None:
        self.changed.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the event fires, and the dispatcher would never stop
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.changed.wait()
