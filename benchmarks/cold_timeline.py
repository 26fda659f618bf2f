"""Timeline of a cold first visit to one dashboard page: fresh server, fresh Chromium profile, then a new tab.

Prints, in seconds after navigation start, when the document loaded, the page title (h1) showed and each plotly
chart was drawn. `--launcher streamlit` starts `streamlit run app.py` instead of `python app.py` (= make app),
for the comparison in docs/benchmarks.md ("2026-12-02"). Run it alone (benchmarks/alone.py):

    PYTHONPATH=. .venv/bin/python benchmarks/cold_timeline.py --cache CACHE_WITH_RUNS --page ds_weights
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DRAWN = ("return [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
         ".filter(e => e.querySelector('.main-svg')).length")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="IWSI_CACHE with runs/ (e.g. iwsi bench app's fixture)")
    ap.add_argument("--page", default="ds_weights")
    ap.add_argument("--launcher", choices=["app", "streamlit"], default="app")
    ap.add_argument("--tabs", type=int, default=2, help="visits: the first cold, then new tabs")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from selenium.webdriver.common.by import By
    from test_browser import chromium, streamlit_server

    from benchmarks.bench_app import CHARTS

    launch = ("app.py",) if args.launcher == "app" else ("-m", "streamlit", "run", "app.py")
    with streamlit_server(Path(args.cache), launch) as server, tempfile.TemporaryDirectory() as tmp, \
            chromium(Path(tmp) / "p") as driver:
        url = f"{server}/{'' if args.page == 'runs' else args.page}"
        for tab in range(args.tabs):
            if tab:
                driver.switch_to.new_window("tab")
            t0 = time.perf_counter()
            driver.get(url)
            events = [("loaded", time.perf_counter() - t0)]
            seen, end = set(), time.time() + 120
            while time.time() < end:
                if "h1" not in seen and driver.find_elements(By.CSS_SELECTOR, "h1"):
                    seen.add("h1")
                    events.append(("h1", time.perf_counter() - t0))
                drawn = driver.execute_script(DRAWN)
                if drawn and f"drawn{drawn}" not in seen:
                    seen.add(f"drawn{drawn}")
                    events.append((f"{drawn} chart(s) drawn", time.perf_counter() - t0))
                if "h1" in seen and drawn >= CHARTS[args.page]:
                    break
                time.sleep(0.01)
            print(f"{args.launcher} tab {tab} {args.page}: " + ", ".join(f"{k} {v:.2f}" for k, v in events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
