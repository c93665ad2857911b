"""The explorer screenshot in the README and docs/explore.md: the demo's file in headless Chromium.

`make docs-screenshot` (runs `make demo` first if its file is missing). Needs Playwright and Debian's
Chromium (`make test` installs both).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

import geneverse as gv

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
VIEW = "#gene=CD79A&analogy=MS4A1,CD79A,CD3E&pairs=MS4A1,CD3E"


def main(path: Path = ROOT / "demo_output" / "pbmc68k_geneverse.h5ad", out: Path = ROOT / "docs/img/explore.png"):
    """Open ``path`` in the explorer with the demo's queries and save the page to ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium: apt install chromium")
    server = gv.viewer.explore(path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 860}, device_scale_factor=1)
            page.goto(server.url + VIEW)
            page.wait_for_selector("body[data-map-ready=true]", timeout=300_000)
            page.wait_for_selector("#analogy-results tbody tr")
            page.wait_for_selector("#pairs-results tbody tr")
            page.wait_for_selector("#neighbours tbody tr")
            page.screenshot(path=str(out))
            browser.close()
    finally:
        server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
