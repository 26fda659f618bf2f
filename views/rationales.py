"""Rationales: highest- vs lowest-DSE rationales of a question, search/sort, and labelling."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from iwsi.contract import RUN_FILE
from iwsi.runs import LABELS, label_sources, read_labels, save_labels
from views._shared import (
    LABEL_KEYS,
    SHIFT_KEYS,
    TEXT,
    header,
    kept_for_k,
    md_text,
    missing,
    mtime,
    require_samples,
    selected_k,
    table,
)

header("Rationales", "For one question, its highest- and lowest-DSE rationales side by side. Label samples as "
                     "redundant, jumping or spurious (the paper's taxonomy of high-DSE samples); suggestions come "
                     "from transparent heuristics, your labels are saved to labels.parquet in the run.")
run, samples = require_samples()
mask, _ = kept_for_k(run, selected_k())
texts = table(run, RUN_FILE.samples, TEXT, shared=True)


def shown(value) -> str:
    """A data or model value inside markdown: escaped, "—" when missing."""
    return "—" if value is None or pd.isna(value) else md_text(value)


@st.cache_data(max_entries=8, show_spinner=False)
def questions(path: str, stamp: float) -> pd.DataFrame:
    """One row per question: text, gold, sample count, D_c count, DS-weight extremes and spread within D_c (the
    cards compare D_c's extremes: ranking by a sample outside it would promise a rationale they do not show),
    share correct. A question without D_c samples has no extremes and sorts last."""
    df = pd.read_parquet(path, columns=["question_id", "question", "gold", "ds_weight", "is_correct", "is_majority"])
    out = df.groupby("question_id", sort=False).agg(question=("question", "first"), gold=("gold", "first"),
                                                    samples=("ds_weight", "size"), correct=("is_correct", "mean"))
    dc = df[df["is_majority"].astype(bool)].groupby("question_id", sort=False)["ds_weight"]
    out = out.join(dc.agg(d_c="size", max_ds="max", min_ds="min"))
    out["d_c"] = out["d_c"].fillna(0).astype(int)
    return out.assign(spread=out["max_ds"] - out["min_ds"]).reset_index()


q = questions(str(run / RUN_FILE.samples), mtime(run / RUN_FILE.samples))
c1, c2 = st.columns([3, 2])
needle = c1.text_input("Search questions", placeholder="words in the question or its id")
order = c2.selectbox("Sort by", ["highest DS weight in D_c", "largest DS spread in D_c", "question id"])
if needle:
    hit = q["question"].str.contains(needle, case=False, regex=False)
    q = q[hit | q["question_id"].astype(str).str.contains(needle, regex=False)]
key = {"highest DS weight in D_c": "max_ds", "largest DS spread in D_c": "spread", "question id": "question_id"}[order]
q = q.sort_values(key, ascending=key == "question_id", kind="stable")
if q.empty:
    st.info("No question matches the search.")
    st.stop()
# The question shown: a row picked in the table, or where the keyboard's next/previous went. The table's key
# changes when the keyboard moves on, so no stale row stays highlighted.
generation = st.session_state.setdefault("questions_gen", 0)
event = st.dataframe(q, hide_index=True, height=250, on_select="rerun", selection_mode="single-row",
                     key=f"questions_{generation}",
                     column_config={"d_c": st.column_config.NumberColumn("in D_c", help="majority samples"),
                                    "max_ds": st.column_config.NumberColumn("max w_DS in D_c", format="%.3f"),
                                    "min_ds": st.column_config.NumberColumn("min w_DS in D_c", format="%.3f"),
                                    "spread": st.column_config.NumberColumn(format="%.3f"),
                                    "correct": st.column_config.NumberColumn("share correct", format="%.2f")})
qids = q["question_id"].tolist()
rows = event.selection.rows if event else []
if rows and rows[0] < len(q):
    st.session_state["rationale_qid"] = qids[rows[0]]
qid = st.session_state.get("rationale_qid")
if qid not in qids:
    qid = qids[0]

# All samples of the chosen question with numbers, suggestion and saved label.
pos = (texts["question_id"] == qid).to_numpy().nonzero()[0]
one = texts.iloc[pos].assign(ds_weight=samples["ds_weight"].to_numpy()[pos], loss=samples["loss"].to_numpy()[pos],
                             is_correct=samples["is_correct"].to_numpy()[pos], kept=mask[pos],
                             majority=samples["is_majority"].to_numpy()[pos])
sugg = table(run, RUN_FILE.suggestions)
if sugg is None:
    missing(run, RUN_FILE.suggestions)
    sugg = pd.DataFrame(columns=["question_id", "sample_id", "suggested_label", "reason"])
one = one.merge(sugg[sugg["question_id"] == qid], on=["question_id", "sample_id"], how="left")
saved = read_labels(run)
one = one.merge(saved[saved["question_id"] == qid][["question_id", "sample_id", "label", "source"]],
                on=["question_id", "sample_id"], how="left")
# A person's label is shown as confirmed; otherwise the suggestion pre-fills the label, unconfirmed.
one["confirmed"] = one["source"].eq("human")
one["label"] = one["label"].where(one["label"].notna(), one["suggested_label"])
one = one.sort_values("ds_weight", ascending=False, kind="stable")

st.markdown(f"**{md_text(qid)}** — {shown(one['question'].iloc[0])}  \ngold: **{shown(one['gold'].iloc[0])}**")


def card(col, title: str, row: pd.Series) -> None:
    known = None if pd.isna(row["is_correct"]) else bool(row["is_correct"])
    verdict = {True: ":green[correct]", False: ":red[wrong]"}.get(known, "gold unknown")
    with col.container(border=True):
        st.markdown(f"**{title}** · sample {shown(row['sample_id'])} · w_DS **{row['ds_weight']:.3f}** · "
                    f"loss {row['loss']:.3f}  \n"
                    f"answer **{shown(row['answer'])}** · {verdict} · "
                    f"{'majority' if row['majority'] else 'outside the majority'} · "
                    f"{'kept' if row['kept'] else 'dropped'} at current k"
                    + (f"  \nsuggested: **{shown(row['suggested_label'])}** — {shown(row['reason'])}"
                       if pd.notna(row.get("suggested_label")) else ""))
        st.text(row["rationale"])


in_majority = one[one["majority"]]
pool = in_majority if len(in_majority) else one  # the filters choose among D_c: compare its extremes
where = " in D_c" if len(in_majority) else ""
if len(pool) == 1:  # its highest and lowest are the same sample: shown once, and said so
    st.info(f"This question has a single sample{where}: it is both the highest- and the lowest-DSE one, so it is "
            "shown once" + (" (the other samples lost the vote)." if len(one) > 1 else "."), icon=":material/info:")
    card(st, f"Only sample{where}", pool.iloc[0])
else:
    left, right = st.columns(2)
    card(left, f"Highest DSE{where}", pool.iloc[0])
    card(right, f"Lowest DSE{where}", pool.iloc[-1])

st.subheader("Label by keyboard")


def move(step: int, at: str, n: int) -> None:
    """Next / previous sample of the question (highest DSE first); past either end, the next / previous
    question of the table as it is searched and sorted."""
    pos = st.session_state.get("label_pos", 0) + step
    if 0 <= pos < n:
        st.session_state["label_pos"] = pos
        return
    i = qids.index(at) + (1 if step > 0 else -1)
    if 0 <= i < len(qids):
        st.session_state.update(rationale_qid=qids[i], label_qid=qids[i], label_pos=0 if step > 0 else -1,
                                questions_gen=st.session_state["questions_gen"] + 1)


def set_label(at: str, sample_id, label: str | None, n: int) -> None:
    """Save one sample's label as a person's (None clears it); a label moves on to the next sample."""
    save_labels(run, pd.DataFrame({"question_id": [at], "sample_id": [sample_id], "label": [label],
                                   "source": ["human"]}))
    if label is not None:
        move(1, at, n)


if st.session_state.get("label_qid") != qid:  # another question was picked in the table: start at its top
    st.session_state.update(label_qid=qid, label_pos=0)
pos = st.session_state["label_pos"]
pos = min(max(pos + len(one) if pos < 0 else pos, 0), len(one) - 1)
st.session_state["label_pos"] = pos
focus = one.iloc[pos]
saved_as = focus["source"] if pd.notna(focus["source"]) else "suggested, not saved"
current = f"**{shown(focus['label'])}** ({shown(saved_as)})" if pd.notna(focus["label"]) else "none yet"
with st.container(border=True):
    st.markdown(f"Sample **{pos + 1} of {len(one)}** of question {md_text(qid)} · sample {shown(focus['sample_id'])} · "
                f"w_DS **{focus['ds_weight']:.3f}** · answer **{shown(focus['answer'])}** · label: {current}")
    st.text(focus["rationale"])
args = (qid, focus["sample_id"])
with st.container(horizontal=True):  # buttons as wide as their label and key hint, wrapped when narrow
    st.button("Previous", shortcut="P", on_click=move, args=(-1, qid, len(one)), icon=":material/arrow_back:")
    st.button("Next", shortcut="N", on_click=move, args=(1, qid, len(one)), icon=":material/arrow_forward:")
    for name, (text, key) in LABEL_KEYS.items():
        st.button(text, shortcut=key, on_click=set_label, args=(*args, name, len(one)))
    st.button("Clear", shortcut="0", on_click=set_label, args=(*args, None, len(one)), icon=":material/backspace:")
st.html(SHIFT_KEYS, unsafe_allow_javascript=True)
st.caption("Keys: **N** next · **P** previous (past the last sample: the next question) · **1** redundant · "
           "**2** jumping · **3** spurious · **4** none (checked, no problem) · **0** clear. A key saves the label at "
           "once as **human** and moves to the next sample.")

st.subheader("Label this question's samples")
edited = st.data_editor(
    one[["sample_id", "label", "confirmed", "ds_weight", "loss", "answer", "is_correct", "majority", "kept",
         "suggested_label", "reason", "rationale"]],
    hide_index=True, key=f"labels_{qid}", disabled=[c for c in one.columns if c not in ("label", "confirmed")],
    column_config={"label": st.column_config.SelectboxColumn(options=list(LABELS), help="empty = no label"),
                   "confirmed": st.column_config.CheckboxColumn(help="tick to confirm a suggestion as your label"),
                   "ds_weight": st.column_config.NumberColumn("w_DS", format="%.3f"),
                   "loss": st.column_config.NumberColumn(format="%.3f"),
                   "rationale": st.column_config.TextColumn(width="large")})
if st.button("Save labels", type="primary", icon=":material/save:"):
    st.toast(f"Saved: {save_labels(run, label_sources(edited, one, qid)):,} labelled samples in labels.parquet")
    saved = read_labels(run)
st.caption("Suggestions pre-fill the label column. A label you change, or a suggestion you tick as confirmed, is "
           "saved as **human**; a suggestion left as it is is saved as **suggested**.")
if len(saved):
    counts = saved.pivot_table(index="label", columns="source", values="sample_id", aggfunc="count", fill_value=0)
    st.dataframe(counts, column_config={"label": "label"})
else:
    st.caption("No labels saved in this run yet.")
