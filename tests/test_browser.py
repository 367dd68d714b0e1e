"""A real headless Chromium against the served dashboard (Debian's chromium, driven by Playwright)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(fixture_db):
    if not os.path.exists(CHROMIUM):
        msg = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " but REQUIRE_BROWSER=1")
        pytest.skip(msg)
    port = _free_port()
    env = {**os.environ, "XAI_DB": str(fixture_db)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not come up within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_leaderboard_and_gallery_in_chromium(served, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(served + "/", wait_until="domcontentloaded")
            page.get_by_text("Do the heatmaps point where the disease is?").wait_for(timeout=60000)

            page.goto(served + "/Leaderboard?metric=pointing_game&region=mask", wait_until="domcontentloaded")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60000)
            page.get_by_text("metric pointing_game", exact=False).first.wait_for(timeout=30000)
            assert page.locator(".js-plotly-plot .bars path, .js-plotly-plot .point path").count() >= 4
            page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

            page.goto(served + "/Gallery?method=chefer_gae&outcome=all", wait_until="domcontentloaded")
            imgs = page.locator('[data-testid="stImage"] img')
            imgs.first.wait_for(timeout=60000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
                ".filter(i => i.complete && i.naturalWidth > 0).length >= 12", timeout=60000)
            assert imgs.count() == 12
            page.get_by_text("method chefer_gae", exact=False).first.wait_for(timeout=30000)
            page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
