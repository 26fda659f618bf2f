"""Percentiles: σ_k% against k for several runs (paper Fig. 3) and accuracy against k (Fig. 2)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.contract import RUN_FILE
from iwsi.runs import list_run_names, read_config, runs_dir
from views._shared import (
    EMPTY_HINT,
    NOT_SCORED_HINT,
    NUMERIC,
    cached_figure,
    has_columns,
    header,
    pick_ablation,
    selected_k,
    selected_run,
    table,
)

header("Percentiles", "σ_k%, the k-th percentile of the majority DS weights, against k — one curve per run, "
                      "datasets overlaid (paper Fig. 3). Below: test accuracy against k from an ablation (Fig. 2).")

every = list_run_names()
names = [n for n in every if has_columns(runs_dir() / n / RUN_FILE.samples, NUMERIC)]
if not names:  # runs there, none scored yet: the demo button is not the way on
    st.info(NOT_SCORED_HINT if every else EMPTY_HINT, icon=":material/info:")
    st.stop()
current = selected_run()


def dataset_of(name: str, default: str = "?") -> str:
    return str(read_config(runs_dir() / name).get("dataset", default))  # as text: a hand-edited config may hold a list


# Default: the selected run plus one run per other dataset, so datasets overlay out of the box.
first_per_dataset = {dataset_of(n, n): n for n in reversed(names)}
default = list(dict.fromkeys(([current.name] if current is not None and current.name in names else [])
                             + list(first_per_dataset.values())))[:6]
chosen = st.multiselect("Runs", names, default=default, help="pick runs of different datasets to overlay them")

parts = []
for name in chosen:
    samples = table(runs_dir() / name, RUN_FILE.samples, NUMERIC, stop_if_broken=False)
    if samples is None:
        continue
    parts.append(charts.percentile_table(samples).assign(label=f"{dataset_of(name)} · {name}"))
curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["label", "k", "sigma"])
log_y = st.toggle("log scale", help="σ at k = 100 is the largest weight, often an outlier that flattens the curves")
st.plotly_chart(cached_figure(charts.percentile_curves, curves, selected_k(), log_y), key="percentiles")
with st.expander("σ_k% table"):
    st.dataframe(curves.pivot(index="k", columns="label", values="sigma") if parts else curves)

st.subheader("Accuracy against k")
_, results = pick_ablation()
st.plotly_chart(cached_figure(charts.accuracy_vs_k, results), key="acc_vs_k")
