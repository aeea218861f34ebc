"""The project as the server sees it, reloaded when its files change.

``ProjectHolder`` hands out one ``Project`` (content, schedules, a renderer with its compile
cache) per version of the files. With live reload on, ``watch`` bumps the version whenever
something under content/, templates/ or schedules/ is saved; the next request builds a fresh
project, and preview pages waiting on ``/preview/events`` are told to reload. Without a watcher
(production) the project is loaded once: a deploy restarts the server anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from watchfiles import awatch

from newsletter.config import Settings
from newsletter.project import Project
from newsletter.render.renderer import Renderer

log = logging.getLogger(__name__)

PREVIEW_ASSETS = "/assets"  # served by this server, so previews work before the site is live


class ProjectHolder:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.version = 0
        self._lock = threading.Lock()
        self._project: Project | None = None
        self._preview_renderer: Renderer | None = None
        self._built = -1
        self._changed: asyncio.Event | None = None

    def project(self) -> Project:
        with self._lock:
            return self._current()[0]

    def preview_renderer(self) -> Renderer:
        """A renderer whose images point at this server (``/assets/…``) instead of base_url."""
        with self._lock:
            project, renderer = self._current()
            if renderer is None:
                renderer = self._preview_renderer = project.renderer_for(PREVIEW_ASSETS)
            return renderer

    def _current(self) -> tuple[Project, Renderer | None]:
        if self._project is None or self._built != self.version:
            self._project = Project(self.settings)
            self._preview_renderer = None
            self._built = self.version
        return self._project, self._preview_renderer

    def bump(self) -> None:
        """The files changed: rebuild on next use and wake the pages waiting for a change."""
        with self._lock:
            self.version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        """The version, once it differs from ``seen`` or ``timeout`` seconds have passed."""
        if self.version != seen:
            return self.version
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        return self.version


def watched_paths(settings: Settings) -> list[Path]:
    folders = (settings.content_dir, settings.templates_dir, settings.schedules_dir)
    return [p for p in folders if p.is_dir()]


async def watch(holder: ProjectHolder, paths: Sequence[Path], stop: asyncio.Event) -> None:
    """Bump ``holder`` on every batch of file changes until ``stop`` is set."""
    if not paths:
        return
    async for changes in awatch(*paths, stop_event=stop, debounce=150, step=50):
        names = sorted({Path(p).name for _, p in changes})
        log.info("changed: %s; reloading the preview", ", ".join(names[:5]))
        holder.bump()
