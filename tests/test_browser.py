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

pytestmark = pytest.mark.slow  # end-to-end: a real browser on a served dashboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(dashboard_db):
    yield from _serve(dashboard_db)


@pytest.fixture
def served_layouts(layout_run):
    yield from _serve(layout_run[0])


def _serve(db):
    if not os.path.exists(CHROMIUM):
        msg = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " but REQUIRE_BROWSER=1")
        pytest.skip(msg)
    port = _free_port()
    env = {**os.environ, "XAI_DB": str(db)}
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


def _launch(playwright):
    """Debian's chromium, headless, with the flags this machine's closed network needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def _wait_images(page, n: int) -> None:
    page.wait_for_function(
        "n => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= n", arg=n, timeout=60000)


def test_every_page_in_chromium(served, dashboard_db, tmp_path):
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    from engine.dashboard import queries
    models = queries.models(dashboard_db)
    depth_model = quote(models[models.init == "random"].model_id.iloc[0])  # the one with the depth ablation
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(page, name):
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(served + "/", wait_until="domcontentloaded")
            page.get_by_text("Do the heatmaps point where the disease is?").wait_for(timeout=60000)
            page.get_by_text("python -m engine run EXPERIMENT.toml", exact=False).first.wait_for(timeout=30000)
            nav = page.locator('[data-testid="stSidebarNav"]')
            nav.get_by_text("Overview", exact=True).wait_for(timeout=30000)  # the first page's name, not "app"
            assert nav.get_by_text("app", exact=True).count() == 0
            shot(page, "overview")

            page.goto(served + "/Leaderboard?metric=iou_top5&region=box&group=strategy", wait_until="domcontentloaded")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60000)
            page.get_by_text("metric iou_top5", exact=False).first.wait_for(timeout=30000)
            page.get_by_text("grouped by pretraining strategy", exact=False).first.wait_for(timeout=30000)
            assert page.locator(".js-plotly-plot .bars path, .js-plotly-plot .point path").count() >= 4
            assert page.get_by_text("Download this table (Parquet)").count() == 1
            shot(page, "leaderboard")

            page.goto(served + "/Gallery?method=chefer_gae&outcome=all", wait_until="domcontentloaded")
            _wait_images(page, 12)
            page.get_by_text("12 images", exact=False).first.wait_for(timeout=30000)
            page.get_by_text("method chefer_gae", exact=False).first.wait_for(timeout=30000)
            shot(page, "gallery")
            page.get_by_role("button", name="Show the pointing-game misses").click()  # a filter, applied
            page.wait_for_function("() => location.search.includes('frange=0~0')", timeout=30000)
            page.get_by_text("pointing_game · mask range", exact=False).first.wait_for(timeout=30000)
            shot(page, "gallery_misses")

            page.goto(served + f"/Gallery?method=chefer_gae&model={depth_model}", wait_until="domcontentloaded")
            _wait_images(page, 12)
            link = page.get_by_role("link", name="details of", exact=False).first
            link.wait_for(timeout=30000)
            href = link.get_attribute("href")
            assert href.startswith("Image?") and "image=" in href
            page.goto(served + "/" + href, wait_until="domcontentloaded")
            page.get_by_text("Insertion and deletion curves").wait_for(timeout=60000)
            _wait_images(page, 5)  # the image and four maps (attention at three depths, chefer_gae)
            page.locator(".js-plotly-plot").first.wait_for(timeout=60000)
            shot(page, "image")

            page.goto(served + "/Compare?view=confounders&threshold=0.3", wait_until="domcontentloaded")
            page.get_by_text("model × method pairs reach 0.3", exact=False).first.wait_for(timeout=60000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=60000)
            shot(page, "compare_confounders")
            page.goto(served + f"/Compare?view=depth&model={depth_model}", wait_until="domcontentloaded")
            page.get_by_text("Localisation per attention depth", exact=False).first.wait_for(timeout=60000)
            shot(page, "compare_depth")

            page.goto(served + "/Runs?status=failed", wait_until="domcontentloaded")
            page.get_by_text("Run history").wait_for(timeout=60000)
            page.get_by_text("2 jobs shown", exact=False).first.wait_for(timeout=30000)
            shot(page, "runs")
        finally:
            browser.close()
    names = {f.name for f in shots.iterdir()}
    assert names == {f"{n}.png" for n in ("overview", "leaderboard", "gallery", "gallery_misses", "image",
                                         "compare_confounders", "compare_depth", "runs")}
    assert all((shots / n).stat().st_size > 10_000 for n in names)


def test_layout_outlines_and_region_names_in_chromium(served_layouts, layout_run, tmp_path):
    """The class-folder example's images are drawn with their tumour outlines and the legend names the
    dataset's regions; the YOLO example's legend names its box regions."""
    from urllib.parse import quote

    import duckdb
    from playwright.sync_api import sync_playwright
    with duckdb.connect(str(layout_run[0]), read_only=True) as con:
        ids = dict(con.execute("SELECT name, dataset_id FROM datasets").fetchall())
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(served_layouts + f"/Gallery?dataset={quote(ids['breast_us'])}", wait_until="domcontentloaded")
            _wait_images(page, 1)
            page.get_by_text("outline: cyan = tumour, lime = box_from_mask", exact=False).first.wait_for(timeout=60000)
            page.screenshot(path=str(tmp_path / "gallery_breast.png"), full_page=True)
            page.goto(served_layouts + f"/Image?dataset={quote(ids['breast_us'])}&image=benign/b000.png",
                      wait_until="domcontentloaded")
            _wait_images(page, 1)  # a training image: drawn with its outlines, no maps
            page.get_by_text("outline: cyan = tumour, lime = box_from_mask", exact=False).first.wait_for(timeout=60000)
            page.screenshot(path=str(tmp_path / "image_breast.png"), full_page=True)
            page.goto(served_layouts + f"/Leaderboard?dataset={quote(ids['breast_us'])}", wait_until="domcontentloaded")
            page.get_by_text("region tumour", exact=False).first.wait_for(timeout=60000)
            page.goto(served_layouts + f"/Gallery?dataset={quote(ids['smear_yolo'])}", wait_until="domcontentloaded")
            _wait_images(page, 1)
            page.get_by_text("outline: cyan = wbc, lime = platelets", exact=False).first.wait_for(timeout=60000)
        finally:
            browser.close()
    assert (tmp_path / "gallery_breast.png").stat().st_size > 10_000
    shots = os.environ.get("SCREENSHOTS_DIR")
    if shots:  # keep them for a look by eye
        for f in tmp_path.glob("*.png"):
            shutil.copy(f, shots)


@pytest.fixture
def served_live(dashboard_db, tmp_path):
    """The dashboard over a copy of the fixture database while a run is under way (its progress file names
    this test's own process, so the run reads as alive)."""
    from test_pages_live import _running
    db = tmp_path / "live.duckdb"
    shutil.copyfile(dashboard_db, db)
    _running(db)
    yield from _serve(db)


def test_live_overview_in_chromium(served_live, tmp_path):
    """The Overview in a real browser while a run is under way: the live panel with the job count, the
    stage and the model, and no 'add some' hint."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(served_live + "/", wait_until="domcontentloaded")
            page.get_by_text("is under way: 13 of 80 jobs", exact=False).first.wait_for(timeout=60000)
            page.get_by_text("Stage: demo_blood_smear: localisation", exact=False).first.wait_for(timeout=30000)
            page.get_by_text("vit_demo:trained@abc", exact=False).first.wait_for(timeout=30000)
            assert page.get_by_text("holds no scores yet", exact=False).count() == 0
            page.screenshot(path=str(tmp_path / "live_overview.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "live_overview.png").stat().st_size > 10_000
