"""Browser timings of the dashboard (issue 24.6 targets: a Gallery filter change redraws in <= 1 s, every
page's first view after start takes <= 3 s), with headless Chromium against ``streamlit run app.py``.

    python bench/page_timing.py --db RESULTS.duckdb [--repeat 3]

First view: from ``goto`` until Streamlit is idle (no "running" status); filter change: the Gallery's
*Predictions* filter switched in the sidebar, until Streamlit is idle again (the cards redrawn).  Prints
seconds with the load average; meaningful only on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"Overview": "/", "Leaderboard": "/Leaderboard", "Gallery": "/Gallery", "Image": "/Image",
         "Compare": "/Compare", "Runs": "/Runs"}
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def serve(db: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env={**os.environ, "XAI_DB": db},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("streamlit did not come up")


def settle(page) -> None:
    page.wait_for_timeout(300)  # the status widget appears once a run starts
    page.wait_for_function(IDLE, timeout=120000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--port", type=int, default=8599)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    proc = serve(str(Path(args.db).resolve()), args.port)
    url = f"http://127.0.0.1:{args.port}"
    times: dict[str, list[float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            for r in range(args.repeat):
                for name, path in PAGES.items():
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t0 = time.perf_counter()
                    page.goto(url + path, wait_until="domcontentloaded")
                    settle(page)
                    times.setdefault(f"first view: {name}" + (" (cold)" if r == 0 else ""), []).append(
                        time.perf_counter() - t0)
                    if name == "Gallery":
                        box = page.get_by_test_id("stSidebar").locator("[data-testid='stSelectbox']").filter(
                            has_text="Predictions")
                        for outcome in ("misclassified", "correct", "all"):
                            box.click()
                            t0 = time.perf_counter()
                            page.get_by_role("option", name=outcome, exact=True).click()
                            settle(page)
                            times.setdefault("Gallery filter change", []).append(time.perf_counter() - t0)
                    page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    load = os.getloadavg()
    for k, v in times.items():
        print(f"{k:40s} median {statistics.median(v):6.2f} s  max {max(v):6.2f} s  (n={len(v)})")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
