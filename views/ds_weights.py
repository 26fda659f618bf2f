"""DS weights: histograms of w_DS and w′ with the σ_k% cut for the sidebar k, and the kept-set export."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.export import build_manifest, kept_frame, to_sft_jsonl
from iwsi.filtering import METHODS
from iwsi.runs import read_config
from views._shared import (
    header,
    kept_for_k,
    metrics,
    open_in_explorer,
    require_samples,
    run_method,
    samples_figure,
    selected_k,
)

header("DS weights", "Distribution-shift weight w_DS = max(w′, 1/w′) with w′ = L̄_v / L (paper Eq. 4-5). "
                     "IWSI keeps the k % of majority samples with the lowest w_DS: move **k** in the sidebar "
                     "to move the σ_k% cut.")
run, samples = require_samples()
k = selected_k()
method = run_method(run)[0]
mask, sigma = kept_for_k(run, k)
majority = samples["is_majority"].to_numpy(bool)

cols = st.columns(5)
cols[0].metric("candidates", f"{len(samples):,}")
cols[1].metric("majority D_c", f"{majority.sum():,}")
cols[2].metric(f"kept at k={k:g}", f"{mask.sum():,}",
               help=f"the set {METHODS[method].label} keeps at this k ({METHODS[method].help})")
n_q = samples.loc[majority, "question_id"].nunique()
cols[3].metric("questions kept", f"{samples.loc[mask, 'question_id'].nunique():,} / {n_q:,}",
               help="questions with at least one kept sample / questions with a majority answer")
cols[4].metric("σ_k%", f"{sigma:.4f}", help=f"the DS weight at the k % cut (IWSI's threshold); at the run's k: "
                                             f"{metrics(run).get('sigma_k', '—')}")
if method != "iwsi":
    st.caption(f"This run trained with **{METHODS[method].label}**: the dashed line is where IWSI would cut at "
               f"k = {k:g} (an overlay for comparison), not this run's rule.")

only_majority = st.toggle("majority samples only (D_c)", value=True, help="the cut applies to D_c")


# The k-independent part, cached: moving the slider only redraws the cut. Rebuilt from a dict on a cache miss and
# hit alike, so its spec (and the chart's widget id, which keeps a click) never changes. Both histograms are one
# figure: the chart is rebuilt in the browser on every k step, and one plot lays out faster than two.
base = samples_figure(run, only_majority, charts.histogram_pair, majority_only=only_majority)
event = st.plotly_chart(charts.add_pair_cut(base, sigma), key="histograms", on_select="rerun",
                        selection_mode=("points", "box"))
points = ((event or {}).get("selection") or {}).get("points", [])
bars = [(base.data[p["curve_number"]], p["customdata"]) for p in points
        if "customdata" in p and p.get("curve_number", len(base.data)) < len(base.data)]
if bars:  # a click on a bar (or a box over several): open its samples in the explorer
    shown = samples[majority] if only_majority else samples
    groups = charts.correctness_groups(shown)
    picked, what = [], []
    for column in charts.PAIR:  # a box lies in one panel; the two panels' bars are told apart by the trace's meta
        mine = [(trace.name, i) for trace, i in bars if trace.meta == column]
        if not mine:
            continue
        edges = charts.histogram_edges(shown[column].to_numpy(float))
        picked += [g[np.isin(charts.bar_index(g[column].to_numpy(float), edges), [i for n, i in mine if n == name])]
                   for name, g in groups.items()]
        symbol = charts.SYMBOLS[column]
        what.append(f"{len(mine)} bar(s) of the {symbol} histogram ({symbol} {edges[min(i for _, i in mine)]:.3f} – "
                    f"{edges[max(i for _, i in mine) + 1]:.3f}, {' + '.join(sorted({n for n, _ in mine}))})")
    open_in_explorer(run, pd.concat(picked), " and ".join(what))
st.caption("Click a bar (or box-select several) to open its samples in the Samples explorer.")
if samples["is_correct"].isna().all():
    st.caption("No gold answers in this run: bars are not split by correctness.")


def export_files(k: float) -> tuple[str, str]:
    """JSONL + manifest for the kept set; built only when a download button is clicked.

    Runs on a download thread without a script context, so it reads the file directly (no st caches)."""
    texts = pd.read_parquet(run / "samples.parquet")
    own, threshold, _, seed = run_method(run)
    kept, s = kept_frame(texts, k, own, threshold, seed)
    manifest = build_manifest(texts, kept, k, s, read_config(run), own)
    return to_sft_jsonl(kept), json.dumps(manifest, indent=2, default=str)


st.subheader("Export the kept set")
st.caption(f"SFT JSONL in TRL's prompt/completion format, same as `iwsi export {run} --k {k:g} --out kept.jsonl`.")
c1, c2 = st.columns(2)
c1.download_button("Kept set (JSONL)", lambda: export_files(k)[0], file_name=f"{run.name}-k{k:g}.jsonl",
                   mime="application/jsonl", icon=":material/download:")
c2.download_button("Manifest (JSON)", lambda: export_files(k)[1], file_name=f"{run.name}-k{k:g}.manifest.json",
                   mime="application/json", icon=":material/download:")
