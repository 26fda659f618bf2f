"""Distributions & embeddings: loss densities (paper Fig. 4) and one UMAP map with kept/dropped masks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.contract import RUN_FILE
from iwsi.present import umap_sample_rows
from views._shared import (
    TEXT,
    cached_figure,
    header,
    kept_for_k,
    missing,
    mtime,
    open_in_explorer,
    require_samples,
    selected_k,
    table,
)

header("Distributions & embeddings", "Loss of the human valid rationales, all self-generated samples and the kept "
                                     "ones (paper Fig. 4), then a UMAP of base-model embeddings — one fitted map, "
                                     "before/after filtering shown as masks. Box- or lasso-select points to read them.")
run, samples = require_samples()
k = selected_k()
mask, sigma = kept_for_k(run, k)

valid = table(run, RUN_FILE.valid, ["loss"])
if valid is None:
    missing(run, RUN_FILE.valid)
valid_loss = valid["loss"].to_numpy(float) if valid is not None else np.array([])
loss = samples["loss"].to_numpy(float)
st.plotly_chart(cached_figure(charts.loss_densities, valid_loss, loss, loss[mask], k=k), key="loss")
few = [f"{name} (n = {len(v)})" for name, v in (("valid", valid_loss), ("kept", loss[mask]))
       if 0 < len(v) < charts.MIN_DENSITY_N]
if few:
    st.caption(f"Fewer than {charts.MIN_DENSITY_N} losses in {' and '.join(few)}: each loss is drawn as a tick on "
               "the x-axis instead of a smoothed density, which a handful of points cannot support.")


@st.cache_data(max_entries=8, show_spinner=False)
def sample_rows(umap_path: str, umap_stamp: float, samples_path: str, samples_stamp: float) -> np.ndarray:
    """Row of samples.parquet for each umap row (-1 for valid points or unmatched ids)."""
    return umap_sample_rows(pd.read_parquet(umap_path, columns=["source", "question_id", "sample_id"]),
                            pd.read_parquet(samples_path, columns=["question_id", "sample_id"]))


st.subheader("UMAP of valid vs self-generated samples")
umap = table(run, RUN_FILE.umap, ["source", "question_id", "sample_id", "x", "y"])
if umap is None:
    missing(run, RUN_FILE.umap)
    st.stop()
rows = sample_rows(str(run / RUN_FILE.umap), mtime(run / RUN_FILE.umap),
                   str(run / RUN_FILE.samples), mtime(run / RUN_FILE.samples))
kept = np.where(rows >= 0, mask[np.clip(rows, 0, None)], False)
majority = np.where(rows >= 0, samples["is_majority"].to_numpy(bool)[np.clip(rows, 0, None)], False)
c1, c2 = st.columns(2)  # the colour choices need a half row to be read whole
color_by = c1.segmented_control("Colour by", ["kept / dropped", *charts.UMAP_COLOR_BY], default="kept / dropped",
                                required=True, key="umap_color",
                                help="kept / dropped: what filtering removed; w_DS, loss or correctness: each "
                                     "self-generated sample's value on a continuous scale")
view = c2.segmented_control("View", ["before", "after"], default="after", required=True,
                            format_func=lambda v: f"{v} filtering", disabled=color_by != "kept / dropped")
c1, _ = st.columns(2)
drawn = c1.select_slider("Self-generated points drawn", [1000, charts.UMAP_POINTS, 5000, 20000, 50000, "all"],
                         value=charts.UMAP_POINTS, key="umap_points",
                         format_func=lambda v: v if v == "all" else f"{v:,}",
                         help=f"a uniform sample (fixed seed) of the self-generated points; every valid point is "
                              f"drawn. Above {charts.SVG_MAX_POINTS:,} points the map is drawn with WebGL.")
points = charts.umap_points(umap, kept, majority, None if drawn == "all" else int(drawn))
if len(points) < len(umap):
    st.caption(f"Showing {len(points):,} of {len(umap):,} points (uniform sample of the self-generated ones).")
totals = charts.umap_totals(umap, kept, majority)
if color_by in charts.UMAP_COLOR_BY:
    values = samples[charts.UMAP_COLOR_BY[color_by]].to_numpy(dtype=float, na_value=np.nan)  # is_correct: 1 / 0 / NaN
    row_value = np.where(rows >= 0, values[np.clip(rows, 0, None)], np.nan)
    figure = cached_figure(charts.umap_colored, points.assign(value=row_value[points["row"].to_numpy()]), color_by)
else:
    figure = cached_figure(charts.umap_scatter, points, view or "after", totals, k=k)
event = st.plotly_chart(figure, key="umap", on_select="rerun", selection_mode=("box", "lasso"))
if color_by in charts.UMAP_COLOR_BY:
    st.caption(f"Each self-generated sample's {color_by}" + (" (1 = right, 0 = wrong; grey: no gold answer)"
               if color_by == "correct" else "") + "; the scale spans its 1st to 99th percentile.")
elif view == "after":
    st.caption(f"After filtering: **{charts.VOTE_REMOVED}** — the answer lost the majority vote (outside D_c); "
               f"**{charts.CUT_REMOVED}** — in D_c, dropped by the run's method at k = {k:g} (the paper's "
               "before/after, §5, is this cut).")

picked = []
for p in ((event or {}).get("selection") or {}).get("points", []):  # PlotlyState is a dict subclass
    data = p.get("customdata")
    picked.append(int(data[0] if isinstance(data, list) else data))
if not picked:
    st.caption("Select points with the box or lasso tool to list their rationales here.")
    st.stop()
sel = rows[np.array(picked)]
texts = table(run, RUN_FILE.samples, TEXT, shared=True)
chosen = texts.iloc[sel[sel >= 0]].assign(ds_weight=samples["ds_weight"].to_numpy()[sel[sel >= 0]],
                                          kept=mask[sel[sel >= 0]])
c1, c2 = st.columns([3, 1])
c1.markdown(f"**{len(chosen):,} self-generated samples selected** ({(sel < 0).sum()} valid points)")
if len(chosen) and c2.button("Open in Samples explorer", icon=":material/manage_search:"):
    open_in_explorer(run, chosen, f"the UMAP ({len(chosen):,} self-generated points)")
st.dataframe(chosen.sort_values("ds_weight", ascending=False), hide_index=True,
             column_config={"rationale": st.column_config.TextColumn(width="large")})
