"""Ablations: accuracy table with 95 % CIs, bars per method, accuracy against k, downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.present import ablation_bundle
from iwsi.report import controls_table, notes_markdown, table_k
from iwsi.runs import ablations_dir
from views._shared import cached_figure, header, md_text, pick_ablation

header("Ablations", "Results of `iwsi ablate`: test accuracy per dataset, method and k over seeds, mean with a "
                    "95 % confidence interval (paper Table 1 and Fig. 2).", run_banner=False)

name, df = pick_ablation()
folder = ablations_dir() / name
summary = charts.ablation_summary(df)
k = table_k(sorted(df["k"].unique().tolist()))
if "base_accuracy" in df:  # the base model's accuracy, shared by every cell of a (dataset, seed)
    base = df.groupby(["dataset", "seed"])["base_accuracy"].first().reset_index()
    base = base.assign(accuracy=base["base_accuracy"])
    base_rows = charts.ablation_summary(base.assign(method="base model", k=0.0))
    summary = pd.concat([base_rows, summary], ignore_index=True)
columns = {c: st.column_config.NumberColumn(format="%.4f") for c in ("mean", "ci_low", "ci_high")}
columns["kept_correct"] = st.column_config.NumberColumn(
    "kept correct", format="percent", help="share of the training samples whose answer is correct (gold known)")
st.dataframe(summary, hide_index=True, column_config=columns)
st.caption("mean / ci: test accuracy over seeds with the 95 % t-interval (the same as results.md; empty with one "
           "seed: no interval); kept: training samples; kept correct: their share with a correct answer.")
if notes := notes_markdown(df):  # a method that kept nothing has no accuracy: say why, not only "–"
    st.warning(notes.strip(), icon=":material/info:")
if "run_dir" in df:  # the cells' eval.parquet give per-question correctness
    sig = controls_table(df, k)
    if not sig.empty:
        st.markdown(f"**Paired bootstrap against the controls (LMSI, random) at k = {k:g}** (per-question "
                    "correctness over seeds × test questions; the same as results.md)")
        st.dataframe(sig.assign(delta=100 * sig["delta"], lo=100 * sig["lo"], hi=100 * sig["hi"]), hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%+.1f") for c in ("delta", "lo", "hi")})
left, right = st.columns(2)
left.plotly_chart(cached_figure(charts.ablation_bars, df, k), key="bars")
right.plotly_chart(cached_figure(charts.accuracy_vs_k, df), key="acc_k")
free = sorted(m for m in df["method"].unique() if charts.k_free(m))
if free:
    st.caption(f"k-free methods ({md_text(', '.join(free))}) ignore k and run once: dashed level lines across k on "
               "the right, bars marked *k-free* on the left.")

st.subheader("Downloads")
st.download_button("Figures & tables for the paper (zip)", lambda: ablation_bundle(folder),
                   file_name=f"iwsi-{name}-figures.zip", mime="application/zip", icon=":material/download:",
                   help=f"both charts as SVG and PDF (iwsi-{name}-accuracy_by_method.pdf, …) plus results.md and "
                   "results.tex; built on click")
cols = st.columns(3)
for col, ext, mime in zip(cols, ("csv", "md", "tex"), ("text/csv", "text/markdown", "application/x-tex")):
    path = folder / f"results.{ext}"
    data = path.read_bytes() if path.exists() else (summary.to_csv(index=False).encode() if ext == "csv" else None)
    if data is None:
        col.caption(f"results.{ext} not written by this ablation")
        continue
    col.download_button(f"results.{ext}", data, file_name=f"{name}-results.{ext}", mime=mime,
                        icon=":material/download:")
