"""Progress callbacks: ``progress(done, total)`` and ``progress(stage, done, total)``.

A native call or a loader reports ``progress(done, total)`` (:data:`Progress`); a run
reports ``progress(stage, done, total)`` (:data:`StageProgress`), a stage's work as one
or more bars. :func:`for_stage` and :func:`any_stage` turn one into the other.

Example:
    >>> seen = []
    >>> done = for_stage(lambda stage, d, t: seen.append((stage, d, t)), "graph")
    >>> done(1, 4)
    >>> any_stage(lambda d, t: seen.append((d, t)))("graph (ivf)", 2, 4)
    >>> seen
    [('graph', 1, 4), (2, 4)]

"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "StageProgress", "any_stage", "for_stage"]

Progress = Callable[[int, int], object]
"""``progress(done, total)``; long steps call it about ten times a second."""

StageProgress = Callable[[str, int, int], object]
"""``progress(stage, done, total)``. A run's stages are ``load``, ``normalize``, ``graph``,
``outliers``, ``cluster``, ``metric:<name>``, ``sweep`` and, with ``[dedup]``, ``dedup``;
each reports ``(0, total)`` when it starts and ``(total, total)`` when it ends, and long
kernels report in between. An executor reports its task stages (``graph (ivf)``, ...):
tasks done of the stage's total."""


def for_stage(progress: StageProgress | None, stage: str) -> Progress | None:
    """``progress(done, total)`` reporting to ``progress(stage, done, total)``."""
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def any_stage(progress: Progress | None) -> StageProgress:
    """``progress(stage, done, total)`` reporting to ``progress(done, total)`` (any stage).

    A no-op when ``progress`` is ``None``.
    """

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    return report
