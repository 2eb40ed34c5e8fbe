"""Independent pieces of work side by side in threads, stopped together.

    with Concurrently([partial(roll_out, name) for name in services], at_once=4) as work:
        for index, name in enumerate(services):
            outcome = work.result(index)      # waits for that piece; raises what it raised

Used where a run does the same slow, mostly waiting thing for several services (rolling replicas out and watching
them; building services in the demo). What the sequential loop gave for free is kept:

* **Ctrl-C and SIGTERM stop everything cleanly.** The interruption arrives in the main thread (as KeyboardInterrupt,
  or Dagster's DagsterExecutionInterruptedError); leaving the `with` block by an exception raises KeyboardInterrupt
  in every piece still running, in its own thread, so its own clean-up (`except BaseException: undo; raise`, e.g. the
  runtime removing the replicas it had started) runs exactly as it would have on the main thread, and the block is
  left only once every piece has ended. A piece still waiting for its turn never starts.
* **A failure stops the others** the same way, once the caller lets the error out of the block.
* **Results in order**: `result(index)` waits for that piece, so callers report in their own order.

The interruption is raised with CPython's PyThreadState_SetAsyncExc: a thread inside a blocking call sees it when
the call returns (every call made here has its own timeout). A second Ctrl-C while the pieces clean up stops waiting.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
_PENDING = object()


class Concurrently(Generic[T]):
    """Runs `tasks` in threads, at most `at_once` at a time; see the module docstring."""

    def __init__(self, tasks: Sequence[Callable[[], T]], *, at_once: int, name: str = "fintech-release") -> None:
        self._turns = threading.BoundedSemaphore(max(1, at_once))
        self._lock = threading.Lock()
        self._stopping = False
        self._running = [False] * len(tasks)
        self._results: list[object] = [_PENDING] * len(tasks)
        self._errors: list[BaseException | None] = [None] * len(tasks)
        self._done = [threading.Event() for _ in tasks]
        self._threads = [
            threading.Thread(target=self._run, args=(index, task), name=f"{name}-{index}", daemon=True)
            for index, task in enumerate(tasks)
        ]

    def __enter__(self) -> Concurrently[T]:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is not None:
            self.stop()
        else:
            for index in range(len(self._threads)):
                self._wait(index)

    def result(self, index: int) -> T:
        """What piece `index` returned, once it has ended; what it raised is raised here."""
        self._wait(index)
        if self._results[index] is not _PENDING:
            return self._results[index]  # type: ignore[return-value]
        raise self._errors[index] or RuntimeError(f"piece {index} ended without a result")

    def succeeded(self, index: int) -> bool:
        """Whether piece `index` has ended with a result (not an error, not interrupted)."""
        return self._done[index].is_set() and self._results[index] is not _PENDING

    def stop(self) -> None:
        """Interrupt every piece still running, start none of those waiting, and wait until all have ended."""
        # Sent under the lock a piece takes to leave its task: a piece that has left it (or ended, its thread id free
        # for another thread) gets none, so the interruption never lands in the bookkeeping of `_run` and escapes.
        with self._lock:
            self._stopping = True
            for index, thread in enumerate(self._threads):
                if self._running[index] and thread.ident is not None:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
                    )
        for index in range(len(self._threads)):
            self._wait(index)

    def _wait(self, index: int) -> None:
        # Not Thread.join: a join interrupted by Ctrl-C can leave the thread looking ended while it still runs (seen
        # here on CPython 3.11), and the clean-up waited for here would then be skipped.
        thread, done = self._threads[index], self._done[index]
        while not done.wait(0.05) and thread.is_alive():
            pass

    def _run(self, index: int, task: Callable[[], T]) -> None:
        try:
            while not self._turns.acquire(timeout=0.05):  # a blocked acquire would never see the interruption
                if self._stopping:
                    raise KeyboardInterrupt
            try:
                with self._lock:
                    if self._stopping:
                        raise KeyboardInterrupt
                    self._running[index] = True
                self._results[index] = task()
            finally:
                with self._lock:
                    self._running[index] = False
                self._turns.release()
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for this piece's result
            if self._results[index] is _PENDING:  # an interruption that came after the result does not undo it
                self._errors[index] = error
        finally:
            self._done[index].set()
