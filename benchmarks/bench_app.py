"""Dashboard benchmark: warm page render times and k-slider response on a GSM8K-scale run.

Writes a synthetic run (benchmarks/fixtures.py, 7,099 questions × 15 samples ≈ 106k candidates) into a
temporary cache unless --cache is given, then measures
- AppTest: server-side script time per page (warm = median of reruns after a first run) and the
  rerun time after moving the k slider to a new value;
- with --browser: the same pages in headless Chromium through `python app.py` (= make app; navigation start →
  title rendered, charts drawn, script idle) and the slider: arrow key → metric updated and charts drawn, timed
  twice per step, by WebDriver polling (what the polling costs on two cores is in it) and in the page (OBSERVE).
Prints a Markdown table (docs/benchmarks.md, "How to read them", "Dashboard").

    PYTHONPATH=. python -m benchmarks.bench_app [--questions 7099 --samples 15] [--browser]   # or: iwsi bench app
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = ["runs", "ds_weights", "percentiles", "correctness", "distributions", "rationales", "explorer", "queue",
         "ablations"]
TITLES = {"runs": "Runs", "ds_weights": "DS weights", "percentiles": "Percentiles", "correctness": "Correctness vs DSE",
          "distributions": "Distributions & embeddings", "rationales": "Rationales", "explorer": "Samples explorer",
          "queue": "Label queue", "ablations": "Ablations"}
# plotly charts each page draws: a page counts as rendered when all are drawn
CHARTS = {"runs": 0, "ds_weights": 1, "percentiles": 2, "correctness": 2, "distributions": 2, "rationales": 0,
          "explorer": 0, "queue": 0, "ablations": 2}


# In-page timing of one k step (injected before the key press; read back from window.__t): ms after the press when
# the first `kept at k=` label changed, when elements were last marked stale (Streamlit's rerun in progress) and the
# last DOM mutation (charts redrawn). No WebDriver call sits in these times, unlike the polled step time.
OBSERVE = """
const t = {start: performance.now(), muts: []};
const labels = () => [...document.querySelectorAll('[data-testid="stMetricLabel"]')].map(e => e.textContent).join('|');
const before = labels();
window.__obs && window.__obs.disconnect();
window.__obs = new MutationObserver(() => {
  const now = performance.now() - t.start;
  t.muts.push(now);
  if (t.label === undefined && labels() !== before) t.label = now;
  if (document.querySelector('[data-stale="true"]')) t.stale = now;
});
window.__obs.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
window.__t = t;
"""


def make_cache(root: Path, questions: int, samples: int) -> Path:
    from benchmarks.fixtures import make_ablation_dir, make_run_dir

    t = time.perf_counter()
    make_run_dir(root / "runs" / "bench-gsm8k", questions, samples, seed=0)
    make_ablation_dir(root / "ablations" / "bench")
    print(f"fixture: {questions} × {samples} samples written in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def apptest_pages(repeats: int = 5) -> dict[str, tuple[float, float]]:
    """page → (first run, median warm rerun) seconds, through streamlit.testing.v1.AppTest."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.run()
    out = {}
    for page in PAGES:
        first = _timed(lambda: at.switch_page(f"views/{page}.py").run())
        assert not at.exception and at.title, f"{page}: {[e.value for e in at.exception]}"
        out[page] = (first, statistics.median(_timed(at.run) for _ in range(repeats)))
    return out


def apptest_slider(values=(50, 60, 70, 75, 85, 90)) -> list[float]:
    """Rerun time of the DS weights page after each new k (never seen before: no cache hit)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("views/ds_weights.py").run()
    times = []
    for k in values:
        times.append(_timed(lambda: at.slider(key="k").set_value(k).run()))
        assert f"k={k}" in " ".join(m.label for m in at.metric)
    return times


def browser_pages(cache: Path, repeats: int = 3) -> tuple[dict[str, tuple], list[float], list[float], list[float]]:
    """Per page in headless Chromium: (full reload, sidebar-link navigation) warm medians and the cold load (fresh
    browser profile and server, first visit of each page in turn); k-slider steps timed by polling and timed in the
    page (OBSERVE: key press → last DOM mutation, read after the step settled); explorer-search responses."""
    sys.path.insert(0, str(REPO / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from test_browser import chromium, slider_key, streamlit_server, wait_rendered

    charts = dict(CHARTS, ablations=2 if any((cache / "ablations").glob("*/results.parquet")) else 0)
    charts["percentiles"] = 2 if charts["ablations"] else 1
    loads, slider, settled, search, cold = {}, [], [], [], {}
    with tempfile.TemporaryDirectory() as tmp, streamlit_server(cache) as url, chromium(Path(tmp) / "p") as driver:
        for page in PAGES:  # cold pass: fresh tab state and empty server caches
            cold[page] = _timed(lambda: (driver.get(f"{url}/{'' if page == 'runs' else page}"),
                                         wait_rendered(driver, charts[page], timeout=120, settle=0.0)))
        for page in PAGES:
            reload, nav = [], []
            for _ in range(repeats):
                reload.append(_timed(lambda: (driver.get(f"{url}/{'' if page == 'runs' else page}"),
                                              wait_rendered(driver, charts[page], timeout=60, settle=0.0))))
                other = "ablations" if page == "runs" else "runs"
                _navigate(driver, other, charts[other])
                nav.append(_timed(lambda: _navigate(driver, page, charts[page])))
            loads[page] = (statistics.median(reload), statistics.median(nav), cold[page])
        _navigate(driver, "ds_weights", charts["ds_weights"])
        for k in range(79, 72, -1):
            driver.execute_script(OBSERVE)
            t = time.perf_counter()
            slider_key(driver, Keys.ARROW_LEFT)
            _wait_text(driver, f"kept at k={k}", css='[data-testid="stMetricLabel"]')
            wait_rendered(driver, charts["ds_weights"], timeout=30, settle=0.0)
            slider.append(time.perf_counter() - t)
            time.sleep(1.5)  # let the step finish drawing (every step seen settled within 1 s) before reading it
            settled.append(max(driver.execute_script("return window.__t")["muts"], default=-1.0) / 1000)
        _navigate(driver, "explorer", 0)
        for needle in ("17", "q0001", "left", "q002"):  # each changes the match count on the fixture run
            box = driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Search questions and rationales"]')
            before = _match_caption(driver)
            box.send_keys(Keys.CONTROL, "a")
            t = time.perf_counter()
            box.send_keys(needle, Keys.ENTER)
            end = time.time() + 30
            while _match_caption(driver) == before and time.time() < end:
                time.sleep(0.01)
            wait_rendered(driver, 0, timeout=30, settle=0.0)
            search.append(time.perf_counter() - t)
    return loads, slider, settled, search


def _match_caption(driver) -> str:
    script = ("return [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
              ".map(e => e.textContent).find(t => t.includes('candidates match')) || ''")
    return driver.execute_script(script)


def _navigate(driver, page: str, charts: int) -> None:
    """Click the sidebar link of `page` and wait until its title and charts are drawn."""
    from selenium.webdriver.common.by import By
    from test_browser import wait_rendered

    links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
    next(a for a in links if a.text.strip().endswith(TITLES[page])).click()
    _wait_text(driver, TITLES[page], css="h1")
    wait_rendered(driver, charts, timeout=60, settle=0.0)


def _wait_text(driver, text: str, css: str = "body", timeout: float = 30) -> None:
    """Until an element matching `css` has `text` in its textContent (one cheap JS call per poll)."""
    script = "return [...document.querySelectorAll(arguments[0])].some(e => e.textContent.includes(arguments[1]))"
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(script, css, text):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} did not appear in {css}")


def report(pages: dict, slider: list[float], browser: tuple | None, n: int) -> str:
    lines = [f"Synthetic run with {n:,} candidates; times in seconds (warm = median of reruns after the first).", "",
             "| page | AppTest first run | AppTest warm rerun | browser: cold first visit "
             "| browser: sidebar navigation | browser: full reload |", "|---|---:|---:|---:|---:|---:|"]
    for page, (first, warm) in pages.items():
        reload, nav, cold = (f"{x:.2f}" for x in browser[0][page]) if browser else ("—", "—", "—")
        lines.append(f"| {page} | {first:.3f} | {warm:.3f} | {cold} | {nav} | {reload} |")
    def steps(times: list[float]) -> str:
        return (f"median {statistics.median(times):.2f} s, max {max(times):.2f} s "
                f"(steps: {' '.join(f'{x:.2f}' for x in times)})")

    in_browser = (f"; browser arrow-key → updated page, polled by WebDriver: {steps(browser[1])}; timed in the page "
                  f"(last DOM mutation): {steps(browser[2])}; explorer search (Enter → match count updated) "
                  f"median {statistics.median(browser[3]):.2f} s, max {max(browser[3]):.2f} s" if browser else "")
    lines += ["", "k slider (DS weights page, new k each time): AppTest rerun median "
              f"{statistics.median(slider):.3f} s, max {max(slider):.3f} s" + in_browser]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="iwsi bench app", description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=7099)
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--cache", help="use this cache dir (with runs/) instead of writing a fixture")
    ap.add_argument("--browser", action="store_true", help="also measure in headless Chromium")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else make_cache(Path(tmp), args.questions, args.samples)
        os.environ["IWSI_CACHE"] = str(cache)
        pages = apptest_pages()
        slider = apptest_slider()
        browser = browser_pages(cache) if args.browser else None
    print(report(pages, slider, browser, args.questions * args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
