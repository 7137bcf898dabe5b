"""Debian's headless Chromium for tests that look at a page: installed when missing, driven by Playwright.

Playwright cannot download its own browsers here, so it drives /usr/bin/chromium (the `chromium`
package; `apt-get install -y chromium` when it is absent) with the flags a sandbox-less CI needs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed with apt-get first when it is not there."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{CHROMIUM} is missing and there is no apt-get to install the chromium package")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)  # stale lists: refresh once
        subprocess.run(install, capture_output=True, check=True)
    if not CHROMIUM.exists():
        raise RuntimeError(f"installing the chromium package did not provide {CHROMIUM}")
    return CHROMIUM


@contextmanager
def page_of(path: Path) -> Iterator[Any]:
    """A Playwright page showing the file `path` (opened from disk, as from a bucket: no server)."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=ARGS)
        try:
            page = browser.new_page()
            page.goto(path.resolve().as_uri())
            yield page
        finally:
            browser.close()
