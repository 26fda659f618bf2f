"""In-browser timeline of k-slider steps on one dashboard page: arrow key → page settled, timed inside Chromium.

A MutationObserver records, in ms after the key press, when the first `kept at k=` metric label changed, when
elements were last marked stale (Streamlit's rerun in progress) and the last DOM mutation of the step (charts
redrawn). Unlike `iwsi bench app`, no Selenium polling sits in the measured time; `--poll` also waits the way
`iwsi bench app` does (WebDriver calls in a loop until the new label and the charts are drawn) and prints that time
beside the in-browser one, to show what the polling itself costs on two cores. `--set option=value` passes a
Streamlit option to the server (repeatable), for an A/B of a setting against .streamlit/config.toml. Run it alone:

    PYTHONPATH=. .venv/bin/python benchmarks/slider_timeline.py --cache CACHE [--set runner.postScriptGC=true]

CACHE needs runs/ (e.g. `iwsi bench app`'s fixture: benchmarks.bench_app.make_cache).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="IWSI_CACHE with runs/")
    ap.add_argument("--page", default="ds_weights", help="a page with the `kept at k=` metric")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--poll", action="store_true", help="also time each step as `iwsi bench app` does")
    ap.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                    help="a Streamlit option for the server, e.g. server.fileWatcherType=auto")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from test_browser import chromium, slider_key, streamlit_server, wait_rendered

    from benchmarks.bench_app import CHARTS, OBSERVE, _wait_text

    launch = ("app.py", *[f"--{s}" for s in args.set])
    settled, polled = [], []
    with streamlit_server(Path(args.cache), launch) as url, tempfile.TemporaryDirectory() as tmp, \
            chromium(Path(tmp) / "p") as driver:
        driver.get(f"{url}/{args.page}")
        wait_rendered(driver, CHARTS[args.page], timeout=120, settle=1.0)
        for step in range(args.steps):
            value = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSliderThumbValue"]')
            k = float(value.text)
            driver.execute_script(OBSERVE)
            start = time.perf_counter()
            slider_key(driver, Keys.ARROW_LEFT)
            if args.poll:  # as iwsi bench app waits (benchmarks/bench_app.py browser_pages)
                _wait_text(driver, f"kept at k={k - 1:g}", css='[data-testid="stMetricLabel"]')
                wait_rendered(driver, CHARTS[args.page], timeout=30, settle=0.0)
                polled.append(1000 * (time.perf_counter() - start))
            time.sleep(2.5)  # every step here settled within 1.5 s
            t = driver.execute_script("return window.__t")
            last = max(t["muts"], default=-1.0)
            settled.append(last)
            print(f"step {step}: label {t.get('label', -1):.0f} ms, last stale {t.get('stale', -1):.0f} ms, "
                  f"settled {last:.0f} ms" + (f", polled {polled[-1]:.0f} ms" if polled else ""), flush=True)
    print(f"{' '.join(args.set) or 'config.toml'}: settled median {statistics.median(settled):.0f} ms, "
          f"max {max(settled):.0f} ms over {len(settled)} steps" + (
              f"; polled median {statistics.median(polled):.0f} ms, max {max(polled):.0f} ms" if polled else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
