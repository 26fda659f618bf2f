"""Plotly.newPlot / Plotly.react of the DS-weight histogram in a bare page (no Streamlit), with template variants.

Loads the installed plotly package's plotly.min.js into a local page in headless Chromium and draws the w_DS
histogram (`charts.histogram_base`, the left panel of the DS weights page's chart since `charts.histogram_pair`;
the 106k-candidate fixture's majority samples, cut at σ = 1.3): as built, without the
template's axis automargin, without any template. Prints each variant's draw times in ms (6 newPlot, then 6 react
moving the cut). Run it alone:

    PYTHONPATH=. .venv/bin/python benchmarks/plotly_newplot.py --cache CACHE
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DRAW = """
const [spec, done] = arguments; const g = document.getElementById('g'); const frame = () => new Promise(
  r => requestAnimationFrame(() => setTimeout(r, 0)));
(async () => { const plot = [], react = [];
  for (let i = 0; i < 6; i++) { Plotly.purge(g); const t = performance.now();
    await Plotly.newPlot(g, spec.data, spec.layout, {}); await frame(); plot.push(performance.now() - t); }
  for (let i = 0; i < 6; i++) { const l = JSON.parse(JSON.stringify(spec.layout));
    l.shapes[0].x0 = l.shapes[0].x1 = 1.2 + i / 100; const t = performance.now();
    await Plotly.react(g, spec.data, l, {}); await frame(); react.push(performance.now() - t); }
  done([plot, react]); })();
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="IWSI_CACHE with the fixture run (benchmarks.bench_app.make_cache)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    import pandas as pd
    import plotly
    import plotly.io as pio
    from test_browser import chromium

    from iwsi import charts

    run = next((Path(args.cache) / "runs").iterdir())
    df = pd.read_parquet(run / "samples.parquet", columns=["is_majority", "is_correct", "ds_weight"])
    built = json.loads(pio.to_json(charts.add_cut(charts.histogram_base(df[df["is_majority"]]), 1.3), validate=False))
    variants = {"as built": built}
    automargin = copy.deepcopy(built)  # the template's automargin back on, as before charts._layout turned it off
    for axis in ("xaxis", "yaxis"):
        automargin["layout"][axis]["automargin"] = True
    variants["template automargin on"] = automargin
    bare = copy.deepcopy(built)
    bare["layout"].pop("template")
    variants["no template"] = bare
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "p.html"
        page.write_text(f'<div id="g" style="width:650px;height:420px"></div><script src="{js.as_uri()}"></script>')
        with chromium(Path(tmp) / "profile") as driver:
            driver.get(page.as_uri())
            for name, spec in [*variants.items()] * 2:  # two rounds, alternated
                plot, react = driver.execute_async_script(DRAW, spec)
                print(f"{name:24s} newPlot {sorted(round(x) for x in plot)}  react {sorted(round(x) for x in react)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
