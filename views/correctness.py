"""Correctness vs DSE: share of right answers per DS-weight interval and DS densities by u* (paper Fig. 5)."""
from __future__ import annotations

import math

import streamlit as st

from iwsi import charts
from views._shared import header, require_samples, samples_figure

header("Correctness vs DSE", "The paper's claim to check: a higher distribution-shift extent goes with more wrong "
                             "answers. Share of correct and wrong answers per DS-weight interval (top) and DS-weight "
                             "densities of samples whose question entropy u ≤ u* (bottom) — paper Fig. 5.")
run, samples = require_samples()


def parse_numbers(text: str) -> list[float] | None:
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        return None


c1, c2 = st.columns([3, 1])
edges_text = c1.text_input("Interval edges (∞ is added)", "1, 1.1, 1.3, 1.5, 2", help="comma-separated, increasing")
only_majority = c2.toggle("majority samples only", value=True, help="D_c, the samples the filters choose among "
                          "(the default on every page)")
edges = parse_numbers(edges_text)
if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
    st.warning("Write increasing numbers separated by commas, e.g. `1, 1.1, 1.3, 1.5, 2`.")
    edges = list(charts.DEFAULT_EDGES[:-1])
trend = charts.correctness_trend(samples[samples["is_majority"]] if only_majority else samples)
if trend is None:
    st.markdown("**This run:** too few samples with a known gold answer to show a trend.")
else:
    verdict = ("the paper's trend holds here" if trend["lo"] > 0 else "the opposite of the paper's trend"
               if trend["hi"] < 0 else "no trend distinguishable at this n")
    st.markdown(f"**This run:** {trend['low']:.0%} correct at w_DS ≤ {trend['median']:.3f} (the median, "
                f"n = {trend['n_low']:,}) vs {trend['high']:.0%} above it (n = {trend['n_high']:,}): "
                f"{100 * trend['diff']:+.1f} points, 95 % interval [{100 * trend['lo']:+.1f}, "
                f"{100 * trend['hi']:+.1f}] — {verdict}.")
st.plotly_chart(samples_figure(run, only_majority, charts.correctness_by_interval, [*edges, math.inf]),
                key="intervals")

thresholds = st.multiselect("Uncertainty thresholds u*", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0],
                            default=list(charts.DEFAULT_THRESHOLDS),
                            help="normalised answer entropy (paper Eq. 9), 0 = unanimous")
st.plotly_chart(samples_figure(run, only_majority, charts.ds_density_by_uncertainty, thresholds), key="densities")
