"""Progress of a many-file run on stderr (rich, transient), quiet with -q."""
from __future__ import annotations

import os

from ..run.pool import Progress


class RichProgress(Progress):
    """A transient bar on stderr (rich). No refresh thread: the pool is forked while it runs, so it is refreshed
    from the pool's own loop."""

    def __init__(self) -> None:
        self._p = None
        self._task = None

    def start(self, total: int, cached: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RP, TextColumn, TimeElapsedColumn

        self._p = RP(TextColumn("[bold]sysscan[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     TextColumn("{task.description}"), console=Console(stderr=True), transient=True,
                     auto_refresh=False)
        self._p.start()
        self._task = self._p.add_task(f"{cached} cached", total=total, completed=cached)
        self._p.refresh()

    def advance(self, path: str, how: str) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=1, description=os.path.basename(path)[:40])
            self._p.refresh()

    def tick(self) -> None:
        if self._p is not None:
            self._p.refresh()

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
