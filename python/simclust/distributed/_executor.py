"""The executor protocol the distributed plan runs on, and the in-process executor.

A plan is a list of stages; a stage maps one function over its tasks. An executor runs
them: :class:`InProcessExecutor` here, one after the other (it tests the plan without
Ray), :class:`simclust.distributed.RayExecutor` as Ray tasks. Shared inputs (the row
blocks) are ``put`` once and passed to tasks as handles, which the executor resolves to
the values before a task's function runs.

Example:
    >>> ex = InProcessExecutor()
    >>> h = ex.put(10)
    >>> ex.map("add", lambda a, b: a + b, [Task("t0", (h, 1)), Task("t1", (h, 2))])
    [11, 12]

"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from simclust.exceptions import DistributedError
from simclust.progress import StageProgress

__all__ = ["Executor", "InProcessExecutor", "Task", "check_parts", "ordered"]

T = TypeVar("T")


@dataclass(frozen=True)
class Task:
    """One task of a stage: a name for messages and the arguments of the stage's function.

    Attributes:
        name: what the task covers, e.g. ``"block pair (0, 3): rows 0..16383 x
            49152..65535"``; an error of the task names it.
        args: the function's arguments; handles from :meth:`Executor.put` among them are
            resolved to their values.

    """

    name: str
    args: tuple[Any, ...]


class Executor(Protocol):
    """Runs the stages of a distributed plan."""

    name: str
    """``"ray"`` or ``"in-process"``, for records and messages."""

    def put(self, value: Any) -> Any:
        """Store ``value`` once for many tasks; returns the handle to pass them."""
        ...

    def get(self, handle: Any) -> Any:
        """The value behind a handle from :meth:`put`."""
        ...

    def imap(
        self,
        stage: str,
        fn: Callable[..., T],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
    ) -> Iterator[tuple[int, T]]:
        """Run ``fn(*task.args)`` for every task; yield ``(task index, result)`` as each ends.

        ``progress(stage, done, total)`` is called at the start (``done = 0``) and after
        each task. Stopping the iteration early (an exception, Ctrl-C) cancels the tasks
        not yet finished.

        Raises:
            DistributedError: a task failed for good (after the executor's retries),
                naming the stage and the task.

        """
        ...

    def map(
        self,
        stage: str,
        fn: Callable[..., T],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
    ) -> list[T]:
        """:meth:`imap`'s results in task order."""
        return ordered(self.imap(stage, fn, tasks, progress=progress), len(tasks))

    def imap_keep(
        self,
        stage: str,
        fn: Callable[..., tuple[T, Any]],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
        parts: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, T, Any]]:
        """:meth:`imap` for an ``fn`` that returns ``(result, kept)``.

        Yields ``(task index, result, handle)``: ``kept`` stays in the object store,
        never sent here; ``handle`` passes it to a later task (as :meth:`put`'s do) or
        :meth:`get` reads it. What a plan keeps between its steps (k-means' per-row state).
        With ``parts``, task ``i``'s ``kept`` is a tuple of ``parts[i] >= 1`` objects, each
        kept on its own (a later task fetches only the one it reads: the shuffle's
        pieces), and ``handle`` is the list of their handles.
        """
        ...

    def map_keep(
        self,
        stage: str,
        fn: Callable[..., tuple[T, Any]],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
        parts: Sequence[int] | None = None,
    ) -> list[tuple[T, Any]]:
        """:meth:`imap_keep`'s ``(result, handle)`` in task order."""
        it = self.imap_keep(stage, fn, tasks, progress=progress, parts=parts)
        return ordered(((i, (r, h)) for i, r, h in it), len(tasks))

    def describe(self) -> dict[str, Any]:
        """What ran the tasks, for the graph's search record (executor, nodes, CPUs)."""
        ...

    def close(self) -> None:
        """Release what the executor started (a Ray runtime it started, its objects)."""
        ...


def check_parts(kept: Any, n: int, stage: str, task: str) -> tuple[Any, ...]:
    """A task's kept parts, which must be a tuple of ``n >= 1`` (:meth:`Executor.imap_keep`)."""
    if n < 1 or not isinstance(kept, tuple) or len(kept) != n:
        got = len(kept) if isinstance(kept, tuple) else type(kept).__name__
        raise DistributedError(f"stage {stage!r}, {task}: {n} kept parts expected, got {got}")
    return kept


def ordered(results: Iterator[tuple[int, T]], n: int) -> list[T]:
    """The results of :meth:`Executor.imap` in task order.

    Example:
        >>> ordered(iter([(1, "b"), (0, "a")]), 2)
        ['a', 'b']

    """
    out: list[Any] = [None] * n
    for i, value in results:
        out[i] = value
    return out


class InProcessExecutor(Executor):
    """Runs every task in this process, in order: the plan without a cluster.

    Handles are the values themselves. Used by the tests (the plan's merge logic against
    the native backend, without starting Ray) and for debugging a plan.
    """

    name = "in-process"

    def put(self, value: Any) -> Any:
        """``value`` itself."""
        return value

    def get(self, handle: Any) -> Any:
        """``handle`` itself."""
        return handle

    def imap(
        self,
        stage: str,
        fn: Callable[..., T],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
    ) -> Iterator[tuple[int, T]]:
        """Run the tasks one after the other (see :meth:`Executor.imap`)."""
        total = len(tasks)
        if progress is not None:
            progress(stage, 0, total)
        for i, task in enumerate(tasks):
            yield i, fn(*task.args)
            if progress is not None:
                progress(stage, i + 1, total)

    def imap_keep(
        self,
        stage: str,
        fn: Callable[..., tuple[T, Any]],
        tasks: Sequence[Task],
        *,
        progress: StageProgress | None = None,
        parts: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, T, Any]]:
        """Run the tasks one after the other; the kept values are their own handles."""
        for i, (result, kept) in self.imap(stage, fn, tasks, progress=progress):
            if parts is not None:
                kept = list(check_parts(kept, parts[i], stage, tasks[i].name))
            yield i, result, kept

    def describe(self) -> dict[str, Any]:
        """``{"executor": "in-process"}``."""
        return {"executor": self.name}

    def close(self) -> None:
        """Nothing to release."""
