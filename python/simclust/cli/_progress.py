"""Progress bars of the command line: one rich bar per pipeline stage, on stderr."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from simclust.pipeline import StageProgress

__all__ = ["StageBars", "stage_progress"]


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


@contextlib.contextmanager
def stage_progress(enabled: bool) -> Iterator[StageProgress | None]:
    """Rich progress bars on stderr when ``enabled`` and stderr is a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield StageBars(progress)
