"""Compare two runs: config diff, kept-set overlap, DS weights overlaid, paired test accuracy."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from iwsi import charts, compare
from iwsi.contract import RUN_FILE
from iwsi.filtering import METHODS
from iwsi.present import side_by_side
from iwsi.runs import list_run_names, read_config, runs_dir
from views._shared import (
    EMPTY_HINT,
    NUMERIC,
    has_columns,
    header,
    kept_for_k,
    md_text,
    outputs_side_by_side,
    run_method,
    selected_run,
    table,
)

header("Compare two runs", "Two runs side by side: what differs in their configs, how far their kept sets overlap "
                           "(each run's own method at its own k), their DS weights overlaid, and their test accuracy "
                           "with a paired bootstrap over the test questions both evaluated.")

names = list_run_names()
if len(names) < 2:
    st.info(EMPTY_HINT if not names else "Only one run so far: a comparison needs two. Launch another on the Runs "
            "page (e.g. the same settings with `method=entropy`).", icon=":material/info:")
    st.stop()
current = selected_run()
first = current.name if current is not None and current.name in names else names[0]
c1, c2 = st.columns(2)
name_a = c1.selectbox("Run A", names, index=names.index(first), key="compare_a")
name_b = c2.selectbox("Run B", names, index=next(i for i, n in enumerate(names) if n != name_a), key="compare_b")
if name_a == name_b:
    st.warning("Pick two different runs.", icon=":material/warning:")
    st.stop()
run_a, run_b = runs_dir() / name_a, runs_dir() / name_b

st.subheader("Config")
diff = compare.config_diff(read_config(run_a), read_config(run_b)).rename(columns={"a": name_a, "b": name_b})
if diff.empty:
    st.caption("The two configs are identical.")
else:
    st.dataframe(diff, hide_index=True)
    st.caption(f"Only the {'key that differs' if len(diff) == 1 else f'{len(diff)} keys that differ'} "
               "(empty: the run's config does not set it).")

for run in (run_a, run_b):  # a damaged file: one message naming it and the fix (table stops the page)
    table(run, RUN_FILE.samples, ["question_id"])
unscored = [n for n, r in ((name_a, run_a), (name_b, run_b)) if not has_columns(r / RUN_FILE.samples, NUMERIC)]
if unscored:
    st.info(f"No DS weights yet in {' and '.join(f'**{n}**' for n in unscored)} (`samples.parquet` is written and "
            "scored by the generate/vote/score stages): kept sets and weights cannot be compared yet.",
            icon=":material/hourglass_top:")
    st.stop()


def own_kept(run) -> tuple[pd.DataFrame, pd.Series, str]:
    """The run's samples, the set it trained on (its method at its own k) and a label for it."""
    method, _, k, _ = run_method(run)
    k = k if k is not None else 100.0
    samples = table(run, RUN_FILE.samples, NUMERIC + ["rationale"], shared=True)
    mask, _ = kept_for_k(run, k)
    k_text = f"k = {k:g}" if METHODS[method].uses_k else "no k"
    return samples, mask, f"{METHODS[method].label}, {k_text}"


samples_a, kept_a, rule_a = own_kept(run_a)
samples_b, kept_b, rule_b = own_kept(run_b)

st.subheader("Kept sets")
o = compare.kept_overlap(samples_a, kept_a, samples_b, kept_b)
cols = st.columns(4)
cols[0].metric(f"kept by A ({rule_a})", f"{o['kept_a']:,} / {o['candidates_a']:,}")
cols[1].metric(f"kept by B ({rule_b})", f"{o['kept_b']:,} / {o['candidates_b']:,}")
if o["shared"]:
    cols[2].metric("kept by both", f"{o['kept_both']:,}", help=f"only A: {o['only_a']:,} · only B: {o['only_b']:,}")
    cols[3].metric("Jaccard", "—" if math.isnan(o["jaccard"]) else f"{o['jaccard']:.3f}",
                   help="kept by both / kept by either, over the shared candidates")
    partly = o["shared"] < max(o["candidates_a"], o["candidates_b"])
    st.caption(f"Over the {o['shared']:,} candidates both runs generated (same question, sample index and "
               f"rationale){': the rest differ, so the counts above the overlap are larger' if partly else ''}. "
               f"Only A: {o['only_a']:,} · only B: {o['only_b']:,}.")
else:
    st.info("The two runs do not share candidates (no sample with the same question, sample index and rationale: "
            "another dataset, model, seed or sampling), so their kept sets cannot overlap. The counts and the "
            "weights below still compare.", icon=":material/info:")

which = st.segmented_control("DS weights of", ["kept samples", "majority samples", "all samples"],
                             default="kept samples", required=True, key="compare_which")
rows = {"kept samples": (kept_a, kept_b), "all samples": (slice(None), slice(None)),
        "majority samples": (samples_a["is_majority"].to_numpy(bool), samples_b["is_majority"].to_numpy(bool))}[which]
both = pd.concat([samples_a.loc[rows[0], NUMERIC].assign(run=f"A: {name_a}"),
                  samples_b.loc[rows[1], NUMERIC].assign(run=f"B: {name_b}")])
st.plotly_chart(charts.ds_weight_overlay(both, which), key="compare_hist")
if o["shared"] == o["candidates_a"] == o["candidates_b"]:
    st.caption("Both runs have the same candidates, so the same DS weights: only their kept sets differ.")

st.subheader("Test accuracy")
ev_a, ev_b = (table(run, RUN_FILE.eval, stop_if_broken=False) for run in (run_a, run_b))
acc = compare.paired_accuracy(ev_a, ev_b)
if acc["n"] == 0:
    st.info("No test question evaluated by both trained models (`eval.parquet` is written by the **evaluate** "
            "stage; runs on other datasets share no test questions).", icon=":material/info:")
    st.stop()
cols = st.columns(4)
cols[0].metric("accuracy A", f"{acc['acc_a']:.3f}")
cols[1].metric("accuracy B", f"{acc['acc_b']:.3f}")
cols[2].metric("Δ A − B (points)", f"{100 * acc['delta']:+.1f}")
cols[3].metric("p (two-sided)", "—" if math.isnan(acc["p"]) else f"{acc['p']:.3f}")
ci = "no interval (n < 2)" if math.isnan(acc["lo"]) else f"[{100 * acc['lo']:+.1f}, {100 * acc['hi']:+.1f}] points"
excluded = not math.isnan(acc["lo"]) and (acc["lo"] > 0 or acc["hi"] < 0)
st.caption(f"Trained models on the n = {acc['n']:,} test questions both runs evaluated"
           + (f" ({acc['only_a']:,} only in A, {acc['only_b']:,} only in B left out)"
              if acc["only_a"] or acc["only_b"] else "")
           + f": paired 95 % bootstrap interval of Δ {ci}, sign-flip permutation p-value — "
           + ("the interval excludes 0." if excluded else "not distinguishable from 0 at this n."))

st.subheader("Trained outputs side by side")
st.caption(f"A = {md_text(name_a)}, B = {md_text(name_b)}: each run's trained model on the test questions both "
           "evaluated.")
outputs_side_by_side(side_by_side(ev_a, "trained", ev_b, "trained", ("A", "B")), ("A", "B"), "compare_outputs")
