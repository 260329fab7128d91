"""Coalescing re-evaluation queue behind the subscription receiver.

A burst of notifications for one patient (a visit posts ten Observations) becomes one
re-evaluation: each patient waits ``delay`` seconds after the latest notification (trailing-edge
debounce, never longer than ``max_wait`` after the first), then runs once; notifications arriving
while it runs schedule exactly one more run. Work that needs the server first (reading an
id-only focus, reconciling after a payload-less ping) runs as background tasks too, so the
receiver answers the FHIR server at once (HAPI retries a slow hook for only about a minute).
Failures are logged with ids only (never resource content) and do not stop the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.server.errors import UpstreamError, UpstreamNotFoundError

__all__ = ["Reevaluator"]

log = logging.getLogger("painpath.reevaluation")


@dataclass(slots=True)
class _Pending:
    first: float
    due: float
    running: bool = False
    again: bool = False


class Reevaluator:
    """Per-patient debounced runs of ``run(patient_id)``."""

    def __init__(
        self,
        run: Callable[[str], Awaitable[Any]],
        *,
        delay: float = 2.0,
        max_wait: float | None = None,
    ) -> None:
        self._run = run
        self.delay = delay
        self.max_wait = max_wait if max_wait is not None else max(5 * delay, delay)
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.notified = 0
        self.runs = 0
        self.failures = 0

    def notify(self, patient_id: str) -> None:
        """Ask for a re-evaluation of one patient (call from the event loop)."""
        self.notified += 1
        now = asyncio.get_running_loop().time()
        pending = self._pending.get(patient_id)
        if pending is None:
            pending = _Pending(first=now, due=now + self.delay)
            self._pending[patient_id] = pending
            self._spawn(self._worker(patient_id, pending))
        elif pending.running:
            pending.again = True
        else:
            pending.due = min(now + self.delay, pending.first + self.max_wait)

    def notify_later(self, find: Callable[[], Awaitable[set[str] | str | None]], what: str) -> None:
        """Find the patient(s) first (a server read), then notify; ``what`` names it in logs."""
        self._spawn(self._find_then_notify(find, what))

    async def _find_then_notify(
        self, find: Callable[[], Awaitable[set[str] | str | None]], what: str
    ) -> None:
        try:
            found = await find()
        except UpstreamNotFoundError:
            log.warning("notification for %s: not on the server; ignored", what)
            return
        except UpstreamError as exc:
            self.failures += 1
            log.warning("notification for %s: %s", what, exc.describe())
            return
        patients = {found} if isinstance(found, str) else set(found or ())
        if not patients:
            log.info("notification for %s: no patient to re-evaluate", what)
        for patient_id in sorted(patients):
            self.notify(patient_id)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, patient_id: str, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while (wait := pending.due - loop.time()) > 0:
                await asyncio.sleep(wait)
            pending.running = True
            await self._run_once(patient_id)
            pending.running = False
            if not pending.again:
                break
            pending.again = False
            pending.first = loop.time()
            pending.due = pending.first + self.delay
        del self._pending[patient_id]

    async def _run_once(self, patient_id: str) -> None:
        self.runs += 1
        try:
            await self._run(patient_id)
        except UpstreamError as exc:
            self.failures += 1
            log.warning("re-evaluation of Patient/%s failed: %s", patient_id, exc.describe())
        except Exception as exc:  # the queue must survive any one patient's failure
            self.failures += 1
            log.error("re-evaluation of Patient/%s failed: %s", patient_id, type(exc).__name__)

    @property
    def idle(self) -> bool:
        """True when nothing is pending or running."""
        return not self._pending and not self._tasks

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every pending re-evaluation has run (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel whatever is still waiting."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._pending.clear()
