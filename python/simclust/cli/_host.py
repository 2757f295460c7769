"""The plugin host the commands use."""

from __future__ import annotations

from simclust.host import Host

__all__ = ["plugin_host"]


def plugin_host() -> Host:
    """``simclust.cli.get_host()``, looked up when a command runs.

    Commands take their host through the package attribute so that one replacement
    (``monkeypatch.setattr(simclust.cli, "get_host", ...)``) reaches every command.
    """
    import simclust.cli  # the package is fully imported once a command runs

    return simclust.cli.get_host()
