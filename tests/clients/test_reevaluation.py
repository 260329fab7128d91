"""The coalescing re-evaluation queue: debounce per patient, one more run after a busy run."""

from __future__ import annotations

import asyncio

from service.server.errors import UpstreamStatusError
from service.subscriptions.reevaluation import Reevaluator


def test_burst_for_one_patient_runs_once_and_patients_run_separately() -> None:
    runs: list[str] = []

    async def main() -> Reevaluator:
        async def run(patient: str) -> None:
            runs.append(patient)

        queue = Reevaluator(run, delay=0.5)  # 10x the gap between notifications: load-proof
        for _ in range(10):
            queue.notify("a")
            await asyncio.sleep(0.01)
        queue.notify("b")
        await queue.drain()
        return queue

    queue = asyncio.run(main())
    assert sorted(runs) == ["a", "b"]
    assert (queue.notified, queue.runs, queue.idle) == (11, 2, True)


def test_debounce_never_waits_longer_than_max_wait() -> None:
    async def main() -> float:
        started = asyncio.get_running_loop().time()
        finished: list[float] = []

        async def run(patient: str) -> None:
            finished.append(asyncio.get_running_loop().time())

        queue = Reevaluator(run, delay=0.2, max_wait=0.5)
        for _ in range(40):  # keeps re-arming the debounce for 2 s
            queue.notify("a")
            await asyncio.sleep(0.05)
        await queue.drain()
        return finished[0] - started

    # capped at max_wait (0.5 s); without the cap the first run would come after 2.2 s. The
    # margin absorbs a loaded CI machine.
    assert asyncio.run(main()) < 1.5


def test_notification_during_a_run_schedules_exactly_one_more() -> None:
    runs: list[str] = []

    async def main() -> None:
        release = asyncio.Event()

        async def run(patient: str) -> None:
            runs.append(patient)
            if len(runs) == 1:
                await release.wait()

        queue = Reevaluator(run, delay=0.0)
        queue.notify("a")
        await asyncio.sleep(0.01)
        for _ in range(3):
            queue.notify("a")
        release.set()
        await queue.drain()

    asyncio.run(main())
    assert runs == ["a", "a"]


def test_a_failing_run_is_counted_and_the_queue_goes_on() -> None:
    async def main() -> Reevaluator:
        async def run(patient: str) -> None:
            if patient == "bad":
                raise UpstreamStatusError("answered 500", status=500)
            if patient == "worse":
                raise RuntimeError("bug")

        queue = Reevaluator(run, delay=0.0)
        for patient in ("bad", "worse", "good"):
            queue.notify(patient)
        await queue.drain()
        return queue

    queue = asyncio.run(main())
    assert (queue.runs, queue.failures) == (3, 2)
