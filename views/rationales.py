"""Rationales: highest- vs lowest-DSE rationales of a question, search/sort, and labelling."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from iwsi.runs import LABELS, read_labels, save_labels
from views._shared import TEXT, header, kept_for_k, missing, mtime, require_samples, selected_k, table

header("Rationales", "For one question, its highest- and lowest-DSE rationales side by side. Label samples as "
                     "redundant, jumping or spurious (the paper's taxonomy of high-DSE samples); suggestions come "
                     "from transparent heuristics, your labels are saved to labels.parquet in the run.")
run, samples = require_samples()
mask, _ = kept_for_k(run, selected_k())
texts = table(run, "samples.parquet", TEXT, shared=True)


def shown(value) -> str:
    return "—" if value is None or pd.isna(value) else str(value)


@st.cache_data(max_entries=8, show_spinner=False)
def questions(path: str, stamp: float) -> pd.DataFrame:
    """One row per question: text, gold, sample count, DS-weight extremes and spread, share correct."""
    df = pd.read_parquet(path, columns=["question_id", "question", "gold", "ds_weight", "is_correct"])
    g = df.groupby("question_id", sort=False)
    out = g.agg(question=("question", "first"), gold=("gold", "first"), samples=("ds_weight", "size"),
                max_ds=("ds_weight", "max"), min_ds=("ds_weight", "min"), correct=("is_correct", "mean"))
    return out.assign(spread=out["max_ds"] - out["min_ds"]).reset_index()


q = questions(str(run / "samples.parquet"), mtime(run / "samples.parquet"))
c1, c2 = st.columns([3, 2])
needle = c1.text_input("Search questions", placeholder="words in the question or its id")
order = c2.selectbox("Sort by", ["highest DS weight", "largest DS spread", "question id"])
if needle:
    hit = q["question"].str.contains(needle, case=False, regex=False) | q["question_id"].astype(str).str.contains(needle, regex=False)
    q = q[hit]
key = {"highest DS weight": "max_ds", "largest DS spread": "spread", "question id": "question_id"}[order]
q = q.sort_values(key, ascending=key == "question_id", kind="stable")
if q.empty:
    st.info("No question matches the search.")
    st.stop()
event = st.dataframe(q, hide_index=True, height=250, on_select="rerun", selection_mode="single-row", key="questions",
                     column_config={"max_ds": st.column_config.NumberColumn("max w_DS", format="%.3f"),
                                    "min_ds": st.column_config.NumberColumn("min w_DS", format="%.3f"),
                                    "spread": st.column_config.NumberColumn(format="%.3f"),
                                    "correct": st.column_config.NumberColumn("share correct", format="%.2f")})
rows = event.selection.rows if event else []
qid = q["question_id"].iloc[rows[0] if rows and rows[0] < len(q) else 0]

# All samples of the chosen question with numbers, suggestion and saved label.
pos = (texts["question_id"] == qid).to_numpy().nonzero()[0]
one = texts.iloc[pos].assign(ds_weight=samples["ds_weight"].to_numpy()[pos], loss=samples["loss"].to_numpy()[pos],
                             is_correct=samples["is_correct"].to_numpy()[pos], kept=mask[pos])
sugg = table(run, "suggestions.parquet")
if sugg is None:
    missing(run, "suggestions.parquet")
    sugg = pd.DataFrame(columns=["question_id", "sample_id", "suggested_label", "reason"])
one = one.merge(sugg[sugg["question_id"] == qid], on=["question_id", "sample_id"], how="left")
saved = read_labels(run)
one = one.merge(saved[saved["question_id"] == qid][["question_id", "sample_id", "label"]],
                on=["question_id", "sample_id"], how="left")
one["label"] = one["label"].where(one["label"].notna(), one["suggested_label"])
one = one.sort_values("ds_weight", ascending=False, kind="stable")

st.markdown(f"**{qid}** — {one['question'].iloc[0]}  \ngold: `{shown(one['gold'].iloc[0])}`")


def card(col, title: str, row: pd.Series) -> None:
    verdict = {True: ":green[correct]", False: ":red[wrong]"}.get(None if pd.isna(row["is_correct"]) else bool(row["is_correct"]), "gold unknown")
    with col.container(border=True):
        st.markdown(f"**{title}** · sample {row['sample_id']} · w_DS **{row['ds_weight']:.3f}** · loss {row['loss']:.3f}  \n"
                    f"answer `{shown(row['answer'])}` · {verdict} · {'kept' if row['kept'] else 'dropped'} at current k"
                    + (f"  \nsuggested: **{row['suggested_label']}** — {row['reason']}" if pd.notna(row.get("suggested_label")) else ""))
        st.text(row["rationale"])


left, right = st.columns(2)
card(left, "Highest DSE", one.iloc[0])
card(right, "Lowest DSE", one.iloc[-1])

st.subheader("Label this question's samples")
edited = st.data_editor(
    one[["sample_id", "label", "ds_weight", "loss", "answer", "is_correct", "kept", "suggested_label", "reason", "rationale"]],
    hide_index=True, key=f"labels_{qid}", disabled=[c for c in one.columns if c != "label"],
    column_config={"label": st.column_config.SelectboxColumn(options=list(LABELS), help="empty = no label"),
                   "ds_weight": st.column_config.NumberColumn("w_DS", format="%.3f"),
                   "loss": st.column_config.NumberColumn(format="%.3f"),
                   "rationale": st.column_config.TextColumn(width="large")})
if st.button("Save labels", type="primary", icon=":material/save:"):
    n = save_labels(run, edited.assign(question_id=qid)[["question_id", "sample_id", "label"]])
    st.toast(f"Saved: {n:,} labelled samples in labels.parquet")
st.caption(f"{len(saved):,} samples labelled in this run so far. Suggestions pre-fill the label column; "
           "saving confirms what is shown.")
