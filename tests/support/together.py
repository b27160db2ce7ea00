"""Running jobs at the same moment, as two replicas (or two taps on a phone) do."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(*jobs: Callable[[], T], timeout: float = 60) -> list[T]:
    """Each job on its own thread, all released together; their results in the jobs' order.

    A job's exception is raised here; a job still running after `timeout` seconds (a
    deadlock) fails the test."""
    results: list[T | None] = [None] * len(jobs)
    errors: list[BaseException] = []
    gate = threading.Barrier(len(jobs), timeout=timeout)

    def run(index: int) -> None:
        try:
            gate.wait()
            results[index] = jobs[index]()
        except BaseException as error:  # noqa: BLE001 - raised again below, in the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a job never finished"
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]
