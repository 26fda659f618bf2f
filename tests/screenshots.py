"""Save a screenshot of every dashboard page to docs/screenshots/<page>.png (headless Chromium).

    PYTHONPATH=. .venv/bin/python tests/screenshots.py [OUT_DIR] [--cache CACHE_DIR] [--run NAME] [--pages probe,...]

With --cache the pages show that cache's real runs (docs/screenshots use a real demo run);
without it they show synthetic fixture runs (benchmarks/fixtures.py), named fixture-* so they are never
mistaken for results.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_browser  # noqa: E402
from test_browser import REPO, chromium, make_cache, streamlit_server, visit_all  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--cache", help="cache dir with runs/ (and ablations/) to show instead of fixtures")
    ap.add_argument("--run", help="run to show (the sidebar's ?run= link); default: the newest")
    ap.add_argument("--pages", help="comma-separated url paths to shoot, e.g. probe (default: every page)")
    args = ap.parse_args()
    if args.cache and not list(Path(args.cache).glob("probes/*/scores.parquet")):
        test_browser.PAGES.update(probe=0)  # the empty state has no chart
    if args.cache and len(list(Path(args.cache).glob("runs/*/samples.parquet"))) < 2:
        test_browser.PAGES.update(compare=0)  # one run: the page says it needs two
    if args.cache and not list(Path(args.cache).glob("ablations/*/results.parquet")):
        # without an ablation, Percentiles has only the σ_k chart and Ablations its empty state
        test_browser.PAGES.update(percentiles=1, ablations=0)
    if args.pages:
        wanted = [p.strip() for p in args.pages.split(",")]
        for page in [p for p in test_browser.PAGES if p not in wanted]:
            del test_browser.PAGES[page]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else make_cache(Path(tmp) / "cache")
        with streamlit_server(cache) as url, chromium(Path(tmp) / "profile") as driver:
            problems = visit_all(driver, url, Path(args.out), f"?run={args.run}" if args.run else "")
    print(f"screenshots in {args.out}; problems: {problems or 'none'}")
