"""Executors for endpointer tests: the turn detector's answer lands on a frame the test knows."""

from __future__ import annotations

from concurrent.futures import Executor, Future


def run_into(future: Future, fn, args) -> None:
    try:
        future.set_result(fn(*args))
    except Exception as error:  # noqa: BLE001 - delivered through the future, as a thread pool does
        future.set_exception(error)


class InlineExecutor(Executor):
    """Runs the question at once, on the calling thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        run_into(future, fn, args)
        return future


class HeldExecutor(Executor):
    """Runs a question only when the test calls ``answer``, as a slow model would."""

    def __init__(self) -> None:
        self.pending: list[tuple[Future, object, tuple]] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self.pending.append((future, fn, args))
        return future

    def answer(self) -> None:
        for future, fn, args in self.pending:
            run_into(future, fn, args)
        self.pending.clear()
