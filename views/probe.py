"""Probe: what each selection signal detects, on rationales whose defects are known (`iwsi probe`).

Reads probe directories under $IWSI_CACHE/probes (files listed in iwsi/probe.py); read-only.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from iwsi import probe_charts, probe_stats
from iwsi.contract import PROBE_MANIFEST
from iwsi.runs import list_probes
from views._shared import header, md_text, selected_k, table

header("Probe", "Known-defect variants of human rationales (redundant, jumping, spurious; style as a control), scored "
                "like the score stage: how well does each selection signal tell them from the clean originals? "
                "AUROC 0.5 = no better than chance. The sidebar **k** moves the cut below.", run_banner=False)


def probe_table(folder: Path, name: str) -> pd.DataFrame | None:
    return table(folder, name, fix=f"Rerun the `iwsi probe` command in its {PROBE_MANIFEST}.")


found = list_probes()
if not found:
    st.info("No probes yet — run `iwsi probe --n 100 --sweep loss_span=full,completion` (or `iwsi probe --run RUN_DIR` "
            "on a run's labels); it writes cache/probes/<name>/.", icon=":material/info:")
    st.stop()
folder = found[[p.name for p in found].index(st.selectbox("Probe", [p.name for p in found],
                                                          help="probe directories under cache/probes, newest first"))]
try:
    info = json.loads((folder / PROBE_MANIFEST).read_text())
except (OSError, ValueError):
    info = {}
info = info if isinstance(info, dict) else {}  # a damaged probe.json: the page shows its tables without it
scores_all, auroc_all = probe_table(folder, "scores.parquet"), probe_table(folder, "auroc.parquet")
variants, skipped = probe_table(folder, "variants.parquet"), probe_table(folder, "skipped.parquet")
labels = list(scores_all["setting"].unique())
setting = st.radio("Scoring setting", labels, horizontal=True, format_func=md_text) if len(labels) > 1 else labels[0]
scores = scores_all[scores_all["setting"] == setting]
auroc = auroc_all[auroc_all["setting"] == setting]
k = selected_k()
sigma = probe_stats.sigma_k(scores, k)

cols = st.columns(5)
cols[0].metric("clean rationales", f"{(scores['kind'] == probe_stats.CLEAN).sum():,}")
cols[1].metric("defective", f"{(scores['kind'] != probe_stats.CLEAN).sum():,}")
# a valid_size sweep centres each setting on its own D_v; probe.json's top-level valid_size is the largest
settings = info.get("settings") if isinstance(info.get("settings"), list) else []  # a damaged probe.json: none
per_setting = {str(s.get("setting")): s.get("valid_size") for s in settings if isinstance(s, dict)}
cols[2].metric("D_v (valid set)", md_text(per_setting.get(setting, info.get("valid_size", "—"))),
               help="human rationales whose mean loss L̄_v centres w′ in this scoring setting")
cols[3].metric(f"σ_k% at k={k:g}", f"{sigma:.4f}",
               help="w_DS at the k % cut of the whole mixed set (clean + all variants)")
cols[4].metric("skipped (too short)", f"{0 if skipped is None else len(skipped):,}",
               help="rationales a defect could not be applied to; listed at the bottom")
st.caption(f"{md_text(info.get('title', folder.name))} · model {md_text(info.get('model', '—'))}"
           + (f" · command: {md_text(info['command'])}" if info.get("command") else ""))

st.subheader("AUROC per defect kind and signal")
st.dataframe(probe_stats.format_table(auroc).drop(columns="setting", errors="ignore"), hide_index=True)
st.plotly_chart(probe_charts.auroc_bars(auroc), key="auroc_bars")
st.caption("Signals are oriented so that higher = flagged as defective: w_DS and loss as IWSI uses them, w′ in both "
           "directions (w′ low ranks exactly like the loss: one ROC curve below, **loss = w′ low**), judges' scores "
           f"low. CIs: percentile bootstrap over questions ({md_text(info.get('boot', '—'))} resamples), variant and "
           "clean original resampled together.")

st.subheader("ROC curves")
kinds = probe_charts.defect_kinds(scores)
for start in range(0, len(kinds), 2):
    for col, kind in zip(st.columns(2), kinds[start:start + 2]):
        col.plotly_chart(probe_charts.roc_figure(scores, kind, auroc), key=f"roc_{kind}")

st.subheader(f"Cut at k = {k:g}: who is dropped")
names = probe_stats.available(scores)
chosen = st.selectbox("Signal for the cut", names, index=names.index("w_DS") if "w_DS" in names else 0,
                      help="keep the k % with the lowest value of this signal; w_DS is IWSI's rule")
cut = probe_stats.cut_table(scores, k)
st.dataframe(cut[cut["signal"] == chosen].drop(columns=["k", "signal"]), hide_index=True,
             column_config={c: st.column_config.NumberColumn(format="%.2f")
                            for c in ("base_rate", "defective_in_dropped", "defective_in_kept")}
             | {"threshold": st.column_config.NumberColumn(format="%.4f")})
st.caption("Each defect kind mixed with the clean rationales (and all kinds together), keeping the k % with the lowest "
           "signal: a signal that detects the defect drops mostly defective samples (share in dropped ≫ base rate).")
st.plotly_chart(probe_charts.ds_histograms(scores, sigma), key="ds_hist")

st.subheader("Examples")
if variants is None:
    st.info("This probe was made from a run's labels (`iwsi probe --run`): read its samples on the Rationales page "
            f"of run {md_text(Path(str(info.get('run', ''))).name)}.", icon=":material/info:")
else:
    kind = st.selectbox("Defect kind", kinds)
    pairs = probe_charts.example_pairs(scores, variants, kind)
    first = st.number_input("first example", 0, max(len(pairs) - 1, 0), 0, step=3) if len(pairs) > 3 else 0
    for _, row in pairs.iloc[first:first + 3].iterrows():
        st.markdown(f"**{md_text(row['pair'])}** — {md_text(row['question'])}")
        left, right = st.columns(2)
        for col, side, title in ((left, "clean", "clean original"), (right, "variant", md_text(kind))):
            with col.container(border=True):
                st.markdown(f"**{title}** · loss {row[f'loss_{side}']:.3f} · w′ {row[f'w_prime_{side}']:.3f} · "
                            f"w_DS **{row[f'ds_weight_{side}']:.3f}**"
                            + (f"  \n_{md_text(row['note'])}_" if side == "variant" else ""))
                st.text(row[f"rationale_{side}"])
if skipped is not None and len(skipped):
    with st.expander(f"{len(skipped)} rationales too short for a defect"):
        st.dataframe(skipped, hide_index=True)
