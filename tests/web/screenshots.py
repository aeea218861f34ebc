"""Make the screenshots in docs/images/ with headless Chromium: the preview, and today's session
on a phone in light and dark mode.

    .venv/bin/python -m tests.web.screenshots

Runs the preview on a throw-away copy of this repository's project (your newsletter.db is never
touched) with the clock at a fixed moment, so the arrival times in the pictures stay the same.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.web import create_app
from tests.web.live import chromium, chromium_path, free_socket, serving, url_of

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
MOMENT = datetime(2027, 2, 15, 9, 0, tzinfo=UTC)
LESSON = "week-1-shoulder-bridge"
SESSION = "/m/week-5-ten-minute-routine/session"  # the sample session, as the author sees it
SHOTS = (
    ("preview-index.png", "/preview?as=named&tz=America/Chicago", 1280, 980, "light"),
    ("preview-desktop-mobile.png", f"/preview/m/{LESSON}?as=named&view=both", 1280, 1100, "light"),
    ("preview-text.png", f"/preview/m/{LESSON}?as=named&view=text", 1280, 1000, "light"),
    ("session-phone.png", SESSION, 375, 1400, "light"),
    ("session-phone-dark.png", SESSION, 375, 1400, "dark"),
)


def main() -> int:
    executable = chromium_path()
    if executable is None:
        print("no Chromium: set NEWSLETTER_TEST_CHROMIUM", file=sys.stderr)
        return 1
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "screenshot-secret-key-0123456789")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("content", "templates", "schedules"):
            shutil.copytree(REPO / name, project / name)
        shutil.copy(REPO / "newsletter.toml", project)
        sock = free_socket()
        # Served from where the pictures are taken, so the pages' images load.
        settings = load_settings(project, base_url=url_of(sock))
        app = create_app(settings, preview=True, live_reload=False, clock=Clock.at(MOMENT))
        with serving(app, sock) as url, chromium(executable) as browser:
            for name, path, width, height, scheme in SHOTS:
                viewport = {"width": width, "height": height}
                page = browser.new_page(viewport=viewport, color_scheme=scheme)
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(IMAGES / name))
                page.close()
                print(f"wrote {IMAGES / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
