"""Where a dashboard page's browser time goes: a reload timeline and Chromium's JS CPU profile of slider steps.

`reload` (default): full reloads of one page, each with in-page timestamps (ms after navigation start) of the
websocket's first message, the title, the plotly chart elements, the charts drawn and the run's last message.
`slider`: k-slider steps on the DS weights page under Chromium's sampling profiler (CDP Profiler domain): main-
thread busy time per step and the functions it went to. Also prints whether a step remounted the charts (their
DOM nodes replaced). `REPO` runs another checkout's app, for A/B of a change (alternate them in one session):

    PYTHONPATH=. .venv/bin/python benchmarks/browser_profile.py --cache CACHE [--page distributions] [--repo REPO]
    PYTHONPATH=. .venv/bin/python benchmarks/browser_profile.py --cache CACHE --mode slider

CACHE needs runs/ (e.g. `iwsi bench app`'s fixture: benchmarks.bench_app.make_cache). Run it alone.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

HOOK = """
window.__tl = {ev: []}; const T = n => window.__tl.ev.push([n, Math.round(performance.now())]);
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (d) {
  if (!this.__h) { this.__h = true; this.addEventListener('message', () => {
    if (!window.__tl.first) { window.__tl.first = 1; T('ws first message'); }
    window.__tl.last = Math.round(performance.now()); }); }
  return send.call(this, d); };
const seen = {};
new MutationObserver(() => {
  if (!seen.h1 && document.querySelector('h1')) { seen.h1 = 1; T('title'); }
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const drawn = charts.filter(e => e.querySelector('.main-svg')).length;
  const n = charts.length;
  if (n && !seen['c' + n]) { seen['c' + n] = 1; T(n + ' chart elements'); }
  if (drawn && !seen['d' + drawn]) { seen['d' + drawn] = 1; T(drawn + ' charts drawn'); }
}).observe(document, {subtree: true, childList: true});
"""


def profile_summary(profile: dict, steps: int, top: int = 25) -> str:
    """Busy main-thread ms per step and the functions with the most inclusive time (CDP Profiler.stop output)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    dt = collections.Counter()  # node → µs, from the sample time deltas
    for nid, delta in zip(profile["samples"], profile["timeDeltas"][1:] + [0]):
        dt[nid] += delta

    def name(nid):
        f = nodes[nid]["callFrame"]
        where = f"{f['url'].rsplit('/', 1)[-1]}:{f['lineNumber']}:{f['columnNumber']}"
        return f"{f['functionName'] or '(anonymous)'} {where}"

    inclusive, idle = collections.Counter(), 0
    for nid, us in dt.items():
        if nodes[nid]["callFrame"]["functionName"] in ("(idle)", "(program)"):
            idle += us
            continue
        seen, x = set(), nid
        while x is not None:
            if name(x) not in seen:
                seen.add(name(x))
                inclusive[name(x)] += us
            x = parent.get(x)
    busy = sum(dt.values()) - idle
    lines = [f"main thread busy {busy / 1000 / steps:.0f} ms per step ({steps} steps)"]
    lines += [f"  {us / 1000 / steps:7.1f} ms  {n}" for n, us in inclusive.most_common(top) if "(root)" not in n]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="IWSI_CACHE with runs/")
    ap.add_argument("--mode", choices=["reload", "slider"], default="reload")
    ap.add_argument("--page", default="distributions", help="reload mode: the page to reload")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent), help="checkout whose app to serve")
    args = ap.parse_args(argv)
    repo = Path(args.repo)
    sys.path[:0] = [str(repo / "tests"), str(repo)]
    from selenium.webdriver.common.keys import Keys
    from test_browser import chromium, slider_key, streamlit_server, wait_rendered

    from benchmarks.bench_app import CHARTS

    with streamlit_server(Path(args.cache)) as url, tempfile.TemporaryDirectory() as tmp, \
            chromium(Path(tmp) / "p") as driver:
        page = args.page if args.mode == "reload" else "ds_weights"
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
        driver.get(f"{url}/{page}")
        wait_rendered(driver, CHARTS[page], timeout=120, settle=1.0)
        if args.mode == "reload":
            for _ in range(args.repeats):
                t = time.perf_counter()
                driver.get(f"{url}/{page}")
                wait_rendered(driver, CHARTS[page], timeout=60, settle=0.0)
                took = time.perf_counter() - t
                time.sleep(0.5)
                tl = driver.execute_script("return window.__tl")
                print(f"{page} reload {took:.2f} s: " + ", ".join(f"{n} {ms}" for n, ms in tl["ev"])
                      + f", last message {tl.get('last')} (ms)")
            return 0
        driver.execute_script("document.querySelectorAll('.js-plotly-plot').forEach(e => e.__kept = 1)")
        driver.execute_cdp_cmd("Profiler.enable", {})
        driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 200})
        driver.execute_cdp_cmd("Profiler.start", {})
        for _ in range(args.repeats):
            slider_key(driver, Keys.ARROW_LEFT)
            time.sleep(1.5)
        profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
        kept = driver.execute_script("return [...document.querySelectorAll('.js-plotly-plot')].map(e => !!e.__kept)")
        print(f"charts kept their DOM nodes across the steps: {kept}")
        print(profile_summary(profile, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
