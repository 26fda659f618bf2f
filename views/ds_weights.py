"""DS weights: histograms of w_DS and w′ with the σ_k% cut for the sidebar k, and the kept-set export."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.contract import RUN_FILE
from iwsi.dsweight import CENTERS, dv_stability, valid_center
from iwsi.export import build_manifest, kept_frame, to_sft_jsonl
from iwsi.filtering import METHODS
from iwsi.runs import read_config
from views._shared import (
    header,
    kept_for_k,
    md_text,
    metrics,
    mtime,
    open_in_explorer,
    require_samples,
    run_method,
    samples_figure,
    selected_k,
    table,
)

DRAWS = 50  # D_v draws from the valid pool for the stability readout

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
cols[2].metric(f"kept at k={k:g}" if METHODS[method].uses_k else "kept (no k)", f"{mask.sum():,}",
               help=f"the set {METHODS[method].label} keeps at this k ({METHODS[method].help})")
n_q = samples.loc[majority, "question_id"].nunique()
cols[3].metric("questions kept", f"{samples.loc[mask, 'question_id'].nunique():,} / {n_q:,}",
               help="questions with at least one kept sample / questions with a majority answer")
cols[4].metric("σ_k%", f"{sigma:.4f}", help=f"the DS weight at the k % cut (IWSI's threshold); at the run's k: "
                                             f"{md_text(metrics(run).get('sigma_k', '—'))}")
if method != "iwsi":
    st.caption(f"This run trained with **{METHODS[method].label}**: the dashed line is where IWSI would cut at "
               f"k = {k:g} (an overlay for comparison), not this run's rule.")

config = read_config(run)
center = config.get("valid_center") if config.get("valid_center") in CENTERS else "mean"  # an odd value: the paper's
valid = table(run, RUN_FILE.valid, ["loss"])
if valid is not None and len(valid):
    st.caption(f"L̄_v = **{center}** of the {len(valid)} D_v losses = {valid_center(valid['loss'], center):.4f} "
               f"(config `valid_center`; the paper uses the mean).")


@st.cache_data(max_entries=32, show_spinner=False)
def stability(path: str, stamp: float, samples_stamp: float, k: float, center: str) -> dict | None:
    """IWSI's kept set at k under DRAWS other D_v of the run's size drawn from the scored valid pool."""
    pool = table(run, RUN_FILE.valid_pool, ["loss", "in_dv"])
    return None if pool is None else dv_stability(samples, pool, k, center, DRAWS, seed=0)


pool_path = run / RUN_FILE.valid_pool
readout = stability(str(pool_path), mtime(pool_path), mtime(run / RUN_FILE.samples), float(k), center)
st.subheader("Stability under other draws of D_v")
if readout is None:
    st.caption("No valid pool in this run (`valid_pool` = 0, a dataset without further human rationales, or a run "
               "made before the pool existed): the stability of the cut cannot be shown.")
else:
    cols = st.columns(3)
    cols[0].metric(f"kept-set Jaccard, median of {readout['draws']}", f"{readout['jaccard_median']:.3f}",
                   help=f"IWSI's kept set at k = {k:g} with L̄_v from another D_v of {readout['valid_size']} rationales "
                        f"drawn from the {readout['pool']} scored valid rationales, against this run's kept set "
                        "(1 = the same samples)")
    cols[1].metric("Jaccard 5–95 %", f"{readout['jaccard_p5']:.3f} – {readout['jaccard_p95']:.3f}")
    cols[2].metric("σ_k% over the draws", f"{readout['sigma_min']:.4f} – {readout['sigma_max']:.4f}")
    st.caption("Paper §5: the tiny valid set makes the weight unstable. A low Jaccard means another handful of "
               "human rationales would have kept a different set; `valid_center=median` moves less with one "
               "odd rationale.")

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
    texts = pd.read_parquet(run / RUN_FILE.samples)
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
