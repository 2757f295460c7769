"""Progress of the command line, on stderr.

One rich bar per pipeline stage on a terminal; plain lines otherwise (logs, CI, pipes).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simclust.progress import StageProgress

__all__ = ["StageBars", "StageLines", "stage_progress"]


class StageBars:
    """A ``progress(stage, done, total)`` callback: one rich bar per stage.

    A stage's bar is created when the stage first reports and removed when the stage
    ends within ``min_seconds``, so only the slow stages stay on screen.
    """

    def __init__(
        self,
        progress: Progress,
        *,
        min_seconds: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.progress = progress
        self.min_seconds = min_seconds
        self.clock = clock
        self._tasks: dict[str, TaskID | None] = {}
        self._start: dict[str, float] = {}
        self._done: set[str] = set()

    def __call__(self, stage: str, done: int, total: int) -> None:
        finished = total > 0 and done >= total
        if stage not in self._tasks or (stage in self._done and not finished):
            old = self._tasks.get(stage)
            if old is not None:
                self.progress.remove_task(old)
            self._tasks[stage] = self.progress.add_task(
                stage, total=total if total > 0 else None, completed=done
            )
            self._start[stage] = self.clock()
            self._done.discard(stage)
        else:
            task = self._tasks[stage]
            if task is None:
                return
            self.progress.update(task, total=total if total > 0 else None, completed=done)
        if finished and stage not in self._done:
            self._done.add(stage)
            task = self._tasks[stage]
            if task is not None and self.clock() - self._start[stage] < self.min_seconds:
                self.progress.remove_task(task)
                self._tasks[stage] = None


class StageLines:
    """A ``progress(stage, done, total)`` callback that writes plain lines.

    Where no terminal shows bars, a long run still says where it is: every ``every``
    seconds the running step's share done and its estimated time left, and once per
    stage that took ``min_seconds`` or more, its time. Call :meth:`close` at the end.

    Example:
        >>> import io
        >>> now = [0.0]
        >>> out = io.StringIO()
        >>> lines = StageLines(out, every=5.0, clock=lambda: now[0])
        >>> lines("graph", 0, 1); lines("graph", 0, 100)
        >>> now[0] = 6.0; lines("graph", 40, 100)
        >>> now[0] = 9.0; lines("graph", 100, 100); lines("graph", 1, 1)
        >>> lines("cluster", 0, 1); lines.close()
        >>> print(out.getvalue(), end="")
        simclust: graph 40% (6 s, about 9 s left)
        simclust: graph done in 9.0 s

    """

    def __init__(
        self,
        stream: TextIO,
        *,
        every: float = 10.0,
        min_seconds: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stream = stream
        self.every = every
        self.min_seconds = min_seconds
        self.clock = clock
        self._stage: str | None = None
        self._start = self._step_start = self._last = 0.0
        self._step_done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self._stage:
            self._finish(now)
            self._stage, self._start, self._last = stage, now, now
            self._step_start, self._step_done = now, 0
            return
        if done < self._step_done or done == 0:  # a new step of the same stage
            self._step_start = now
        self._step_done = done
        if total > 0 and 0 < done < total and now - self._last >= self.every:
            self._last = now
            share = done / total
            left = (now - self._step_start) * (1.0 - share) / share
            self._write(
                f"{stage} {100 * share:.0f}% ({now - self._start:.0f} s, about {left:.0f} s left)"
            )

    def close(self) -> None:
        """Report the last stage."""
        self._finish(self.clock())
        self._stage = None

    def _finish(self, now: float) -> None:
        if self._stage is not None and now - self._start >= self.min_seconds:
            self._write(f"{self._stage} done in {now - self._start:.1f} s")

    def _write(self, text: str) -> None:
        self.stream.write(f"simclust: {text}\n")
        self.stream.flush()


@contextlib.contextmanager
def stage_progress(enabled: bool) -> Iterator[StageProgress | None]:
    """Progress on stderr when ``enabled``.

    Rich bars with the time left on a terminal, else :class:`StageLines`.
    """
    console = Console(stderr=True)
    if not enabled:
        yield None
        return
    if not console.is_terminal:
        lines = StageLines(sys.stderr)
        yield lines
        lines.close()  # not after an error: the stage running then did not finish
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield StageBars(progress)
