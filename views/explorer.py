"""Samples explorer: every candidate of the selected run in one table — full-text search in questions
and rationales, filters (label and its source, correctness, majority, kept at k, DS-weight range,
question) — and a per-question drill-down with all m samples, their answers, weights and the vote (with
its rule: ties, min_agreement). Opens once the vote is done; weights and the kept set join after score."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from iwsi.contract import RUN_FILE
from iwsi.filtering import METHODS
from iwsi.runs import LABELS, finite, read_config, read_labels
from views._shared import (
    EXPLORER_HANDOFF,
    TEXT,
    header,
    kept_for_k,
    md_text,
    require_samples,
    run_method,
    selected_k,
    table,
)

header("Samples explorer", "All candidates of the run: search questions and rationales, filter, sort any column; "
                           "pick a row to see every sample of its question and the vote.")
run, samples = require_samples(scored=False)
scored = "ds_weight" in samples
if not scored:
    st.info(f"Run **{run.name}** has no losses yet: the candidates and the vote are here; losses, DS weights and "
            "the kept set join once the score stage has run (progress on the Runs page).",
            icon=":material/hourglass_top:")
    samples = samples.assign(loss=np.nan, ds_weight=np.nan)
mask = kept_for_k(run, selected_k())[0] if scored else np.zeros(len(samples), dtype=bool)
texts = table(run, RUN_FILE.samples, TEXT + ["majority_answer", "agreement", "tied"], shared=True)
min_agreement = finite(read_config(run).get("min_agreement")) or 0.0
labels = read_labels(run)

c1, c2 = st.columns([3, 1])
needle = c1.text_input("Search questions and rationales", placeholder="words, numbers or a question id")
column_choice = c2.selectbox("Search in", ["question and rationale", "question", "rationale"])
f1, f2, f3, f4, f5 = st.columns(5)
correct = f1.selectbox("Answer", ["any", "correct", "wrong", "gold unknown"])
majority = f2.selectbox("Majority (D_c)", ["any", "in D_c", "outside D_c"])
method = METHODS[run_method(run)[0]]
kept = f3.selectbox(f"Kept at k={selected_k():g}" if method.uses_k else f"Kept ({method.label}: no k)",
                    ["any", "kept", "dropped"])
label = f4.selectbox("Label", ["any", "labelled", "unlabelled", *LABELS])
source = f5.selectbox("Label source", ["any", "human", "suggested", "unknown"])
if scored:
    lo, hi = float(samples["ds_weight"].min()), float(samples["ds_weight"].max())
    ds_range = st.slider("DS-weight range", lo, max(hi, lo + 1e-6), (lo, max(hi, lo + 1e-6)), format="%.3f")

keep = np.ones(len(samples), dtype=bool)
handoff = st.session_state.get(EXPLORER_HANDOFF)
if handoff and handoff["run"] != run.name:  # picked in another run: does not apply here
    handoff = st.session_state.pop(EXPLORER_HANDOFF) and None
if handoff:  # samples picked on a chart (DS-weight histogram bar, UMAP selection)
    keys = pd.MultiIndex.from_frame(samples[["question_id", "sample_id"]])
    keep &= keys.isin(handoff["keys"])
    c1, c2 = st.columns([4, 1])
    c1.info(f"Showing the {len(handoff['keys']):,} samples picked on {handoff['what']}; the filters below narrow "
            "them further.", icon=":material/filter_alt:")
    c2.button("Show all candidates", icon=":material/filter_alt_off:",
              on_click=lambda: st.session_state.pop(EXPLORER_HANDOFF, None))
if needle:
    hit = np.zeros(len(samples), dtype=bool)
    for column in (["question", "rationale"] if column_choice == "question and rationale" else [column_choice]):
        hit |= texts[column].str.contains(needle, case=False, regex=False, na=False).to_numpy()
    hit |= texts["question_id"].astype(str).str.contains(needle, regex=False).to_numpy()
    keep &= hit
is_correct = samples["is_correct"]
keep &= {"any": True, "correct": is_correct.eq(True).to_numpy(), "wrong": is_correct.eq(False).to_numpy(),
         "gold unknown": is_correct.isna().to_numpy()}[correct]
in_dc = samples["is_majority"].to_numpy(bool)
keep &= {"any": True, "in D_c": in_dc, "outside D_c": ~in_dc}[majority]
keep &= {"any": True, "kept": mask, "dropped": ~mask}[kept]
w = samples["ds_weight"].to_numpy(float)
if scored:
    keep &= (w >= ds_range[0] - 1e-12) & (w <= ds_range[1] + 1e-12)
# Votes for the question's most common answer out of its m samples: a "majority" of 1 of 4 (all answers differ) is
# a plurality of one, and shows as such (min_agreement > 0 leaves such a question without a majority answer).
by_question = samples.groupby("question_id", sort=False)["is_majority"]
m_samples = by_question.transform("size").to_numpy()
parsed = texts["answer"].notna().groupby(texts["question_id"], sort=False).transform("sum").to_numpy()
agreement = texts["agreement"].to_numpy(float) if "agreement" in texts else by_question.transform("mean").to_numpy()
dc_votes = np.rint(agreement * parsed).astype(int)
view = texts.loc[keep, ["question_id", "sample_id", "question", "rationale", "answer", "gold"]].assign(
    ds_weight=w[keep], loss=samples["loss"].to_numpy()[keep], is_correct=is_correct.to_numpy()[keep],
    majority=in_dc[keep], agreement=[f"{v} of {n}" for v, n in zip(dc_votes[keep], m_samples[keep])], kept=mask[keep])
view = view.merge(labels[["question_id", "sample_id", "label", "source"]], on=["question_id", "sample_id"], how="left")
if label != "any":
    view = view[view["label"].notna() if label == "labelled" else view["label"].isna() if label == "unlabelled"
                else view["label"].eq(label)]
if source != "any":
    view = view[view["source"].eq(source)]

st.caption(f"{len(view):,} of {len(samples):,} candidates match.")
shown = view.head(5000)
if len(view) > len(shown):
    st.caption("The table shows the first 5,000 matches; narrow the filters to see the rest.")
event = st.dataframe(shown, hide_index=True, height=380, on_select="rerun", selection_mode="single-row", key="explorer",
                     column_config={"ds_weight": st.column_config.NumberColumn("w_DS", format="%.3f"),
                                    "loss": st.column_config.NumberColumn(format="%.3f"),
                                    "rationale": st.column_config.TextColumn(width="large")})
rows = event.selection.rows if event else []
if not rows or rows[0] >= len(shown):
    st.info("Pick a row to see every sample of its question and the vote.", icon=":material/touch_app:")
    st.stop()

qid = shown["question_id"].iloc[rows[0]]
pos = np.flatnonzero(texts["question_id"].to_numpy() == qid)
one = texts.iloc[pos]
st.subheader(f"Question {md_text(qid)}")
winner = one["majority_answer"].iloc[0] if "majority_answer" in one else next(iter(one["answer"][in_dc[pos]]), None)
won, of = int(dc_votes[pos[0]]), int(m_samples[pos[0]])
if winner is None or pd.isna(winner):
    vote = (f"no majority answer: the most common answer has **{won} of {of}** samples, below the run's "
            f"min_agreement {min_agreement:g}, so none of its samples is in D_c" if won else
            "no majority answer: no sample's answer parses")
else:
    weak = " — a plurality, not a majority (no more than half agree)" if 2 * won <= of else ""
    tie = (" · a **tie** for the most votes, which goes to the answer sampled first"
           if "tied" in one and bool(one["tied"].iloc[0]) else "")
    vote = f"majority answer **{md_text(winner)}** · agreement **{won} of {of}** samples{weak}{tie}"
st.markdown(f"{md_text(one['question'].iloc[0])}  \ngold **{md_text(one['gold'].iloc[0])}** · {vote} · "
            f"answer entropy u = {samples['entropy'].to_numpy()[pos][0]:.3f}")
st.caption(f"The vote (iwsi/vote.py): the most common parseable answer wins, ties go to the answer sampled first, "
           f"and with min_agreement > 0 (this run: {min_agreement:g}) a question whose winner has a smaller share "
           "of its parseable answers has no majority answer.")
votes = one["answer"].fillna("(unparsed)").value_counts().rename_axis("answer").reset_index(name="samples")
left, right = st.columns([1, 3])
left.dataframe(votes, hide_index=True)
right.dataframe(pd.DataFrame({"sample_id": one["sample_id"].to_numpy(), "answer": one["answer"].to_numpy(),
                              "w_DS": w[pos], "loss": samples["loss"].to_numpy()[pos],
                              "correct": is_correct.to_numpy()[pos], "majority": in_dc[pos], "kept": mask[pos],
                              "rationale": one["rationale"].to_numpy()}),
                hide_index=True, column_config={"w_DS": st.column_config.NumberColumn(format="%.3f"),
                                                "loss": st.column_config.NumberColumn(format="%.3f"),
                                                "rationale": st.column_config.TextColumn(width="large")})
