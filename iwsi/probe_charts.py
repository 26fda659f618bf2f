"""Chart builders for the Probe page: pure functions DataFrame → plotly Figure (no streamlit).

Input is a probe directory's scores.parquet (one setting) and auroc.parquet (iwsi/probe.py). Colours
are fixed per defect kind; clean rationales are grey, the σ_k% cut grey and dashed as on the DS
weights page. Tested in tests/test_probe_app.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from iwsi.charts import COLORS, DS_LABEL, _empty, _layout
from iwsi.probe_stats import CLEAN, SIGNALS, available, roc_points

KIND_COLORS = {CLEAN: "#7f7f7f", "redundant": "#1f77b4", "jumping": "#ff7f0e", "spurious": "#d62728",
               "style": "#2ca02c"}
SIGNAL_COLORS = {"w_DS": "#9467bd", "loss": "#d62728", "w′ high": "#1f77b4", "w′ low": "#17becf",
                 "self-eval low": "#8c564b", "RM low": "#e377c2"}
_EXTRA = ["#8c564b", "#e377c2", "#bcbd22", "#17becf", "#9467bd"]


def kind_color(kind: str, i: int = 0) -> str:
    base = kind.split(" (")[0]  # "spurious (manual)" → the spurious colour
    return KIND_COLORS.get(base, _EXTRA[i % len(_EXTRA)])


def defect_kinds(scores: pd.DataFrame) -> list[str]:
    return [k for k in scores["kind"].unique() if k != CLEAN]


def roc_figure(scores: pd.DataFrame, kind: str, auroc: pd.DataFrame | None = None) -> go.Figure:
    """ROC curve of every available signal for `kind` vs clean; the legend carries each AUROC. w′ low is not
    drawn beside the loss: w′ = L̄_v / L ranks exactly like the loss, so its curve would lie hidden under the
    loss's; the loss's legend entry says so."""
    title = f"ROC: {kind} vs clean"
    names = available(scores)
    same = "loss" in names and "w′ low" in names
    names = [n for n in names if not (same and n == "w′ low")]
    if kind not in set(scores["kind"]) or not names:
        return _empty(title, "no scored samples of this kind")
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#cccccc", dash="dot"), name="chance",
                    hoverinfo="skip")
    for name in names:
        pts = roc_points(scores, kind, name)
        if pts.empty:
            continue
        label = "loss = w′ low" if same and name == "loss" else name
        if auroc is not None:
            row = auroc[(auroc["kind"] == kind) & (auroc["signal"] == name)]
            if len(row):
                label = f"{label} ({row['auroc'].iloc[0]:.2f})"
        fig.add_scatter(x=pts["fpr"], y=pts["tpr"], mode="lines", name=label,
                        line=dict(color=SIGNAL_COLORS.get(name), width=2), line_shape="hv")
    fig.update_xaxes(range=[0, 1]).update_yaxes(range=[0, 1.02])
    return _layout(fig, title, "false positive rate (clean flagged)", "true positive rate (defective flagged)",
                   height=380)


def auroc_bars(auroc: pd.DataFrame) -> go.Figure:
    """AUROC with 95 % CI per defect kind (x) and signal (colour); 0.5 = no separation."""
    if auroc.empty:
        return _empty("AUROC per defect kind and signal", "no AUROC rows")
    fig = go.Figure()
    for name in [s for s in SIGNALS if s in set(auroc["signal"])]:
        part = auroc[auroc["signal"] == name]
        fig.add_bar(x=part["kind"], y=part["auroc"], name=name, marker_color=SIGNAL_COLORS.get(name),
                    error_y=dict(type="data", symmetric=False, array=(part["ci_high"] - part["auroc"]).clip(lower=0),
                                 arrayminus=(part["auroc"] - part["ci_low"]).clip(lower=0)))
    fig.add_hline(y=0.5, line=dict(color=COLORS["cut"], dash="dash", width=1), annotation_text="chance",
                  annotation_position="top right")
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "AUROC per defect kind and signal (95 % bootstrap CI)", "defect kind",
                   "AUROC (defective vs clean)", barmode="group")


def ds_histograms(scores: pd.DataFrame, sigma: float | None, bins: int = 30) -> go.Figure:
    """One panel per defect kind: DS weights of clean vs that kind (share of each group per bin),
    with the σ_k% cut of the whole mixed set."""
    kinds = defect_kinds(scores)
    title = "DS weight: clean vs each defect kind"
    if not kinds:
        return _empty(title, "no defect kinds")
    values = scores["ds_weight"].to_numpy(float)
    values = values[np.isfinite(values)]
    hi = max(float(np.percentile(values, 99.5)), float(values.min()) + 1e-6) if len(values) else 2.0
    edges = np.linspace(1.0, hi, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    cols = min(2, len(kinds))
    rows = int(np.ceil(len(kinds) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=kinds, shared_xaxes=True, vertical_spacing=0.12)
    for i, kind in enumerate(kinds):
        r, c = i // cols + 1, i % cols + 1
        for group, color in ((CLEAN, KIND_COLORS[CLEAN]), (kind, kind_color(kind, i))):
            v = scores.loc[scores["kind"] == group, "ds_weight"].to_numpy(float)
            counts, _ = np.histogram(np.clip(v, 1.0, hi), bins=edges)
            share = counts / max(counts.sum(), 1)
            fig.add_bar(x=centres, y=share, width=width, name=group, marker_color=color, opacity=0.6,
                        marker_line_width=0, showlegend=i == 0 or group != CLEAN, legendgroup=group, row=r, col=c)
        if sigma is not None and np.isfinite(sigma):
            fig.add_vline(x=sigma, line=dict(color=COLORS["cut"], dash="dash", width=1.5), row=r, col=c)
    fig.update_layout(barmode="overlay", bargap=0)
    if sigma is not None and np.isfinite(sigma):
        title += f" · dashed: σ_k% = {sigma:.3f}, samples right of it are dropped"
    fig.update_xaxes(title_text=DS_LABEL, row=rows)
    return _layout(fig, title, "", "share of the group", height=280 * rows + 120)


def example_pairs(scores: pd.DataFrame, variants: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Clean original and `kind` variant side by side, one row per question (texts + loss, w', w_DS)."""
    s = scores[["pair", "kind", "loss", "w_prime", "ds_weight"]]
    v = variants[["pair", "kind", "question", "rationale", "note"]].merge(s, on=["pair", "kind"], how="left")
    clean = v[v["kind"] == CLEAN].drop(columns=["kind", "note"])
    bad = v[v["kind"] == kind].drop(columns=["kind", "question"])
    return clean.merge(bad, on="pair", suffixes=("_clean", "_variant"))
