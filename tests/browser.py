"""A real browser for the tests: Debian's chromium, driven by Playwright, which never downloads one.

CI installs chromium when it is missing (`.ci/run`), so there the browser tests always run; on a
machine without it they are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_reason() -> str | None:
    """Why the browser tests cannot run here (None: they can, and in CI they always must)."""
    if os.environ.get("CI"):
        return None
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium; CI installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (the dev requirements pin it)"
    return None


@contextmanager
def chromium(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A headless chromium context with a fresh profile (removed afterwards)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="test-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=viewport or {"width": 1200, "height": 820},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
