"""Label queue: label samples across questions in one pass (e.g. the 50 highest-DSE samples of D_c), by keyboard,
and export every label with its source as CSV or JSONL. Labels go to the run's labels.parquet, as on Rationales."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from iwsi.contract import RUN_FILE
from iwsi.runs import QUEUES, label_queue, labels_export, read_labels, save_labels
from views._shared import LABEL_KEYS, SHIFT_KEYS, TEXT, header, md_text, require_samples, table

header("Label queue", "Samples from many questions in one queue, ranked by a signal (the paper's high-DSE samples "
                      "first by default): label each by keyboard as redundant, jumping, spurious or none. Labels are "
                      "saved at once as **human** in the run's labels.parquet; export them with their source below.")
run, samples = require_samples()
texts = table(run, RUN_FILE.samples, TEXT, shared=True)
suggestions = table(run, RUN_FILE.suggestions)
labels = read_labels(run)

c1, c2, c3 = st.columns([3, 1, 1])
queue = c1.selectbox("Queue", list(QUEUES), help="which samples, in which order")
size = int(c2.number_input("Samples", 1, 1000, 50))
skip = c3.checkbox("Skip labelled", True, help="leave out the samples a person has already labelled")
# The queue is fixed when it is made, so a label moves on to the next sample and Previous goes back to a
# labelled one; changing a setting (or the run) makes a new queue.
params = (run.name, queue, size, skip)
if st.session_state.get("queue_params") != params:
    keys = label_queue(samples, labels, queue, size, skip)
    st.session_state.update(queue_params=params, queue_pos=0,
                            queue_keys=list(zip(keys["question_id"], keys["sample_id"])))
keys = st.session_state["queue_keys"]


def export_section() -> None:
    st.subheader("Export the labels")
    rows = labels_export(texts.assign(**{c: samples[c].to_numpy() for c in ("is_correct", "is_majority",
                                                                             "ds_weight", "loss")}), labels)
    if rows.empty:
        st.caption("No labels saved in this run yet.")
        return
    by_source = rows["source"].value_counts().to_dict()
    st.caption(f"{len(rows):,} labelled samples: " + ", ".join(f"{n:,} {md_text(s)}" for s, n in by_source.items())
               + ". Each row: the label, its source (human, suggested: a heuristic suggestion saved unchanged, "
                 "unknown: saved before sources were recorded), when, and the sample it labels.")
    c1, c2 = st.columns(2)
    c1.download_button("labels.csv", rows.to_csv(index=False), f"{run.name}-labels.csv", "text/csv",
                       icon=":material/download:")
    c2.download_button("labels.jsonl", rows.to_json(orient="records", lines=True, force_ascii=False),
                       f"{run.name}-labels.jsonl", "application/jsonl", icon=":material/download:")


if not keys:
    st.info("Nothing left to label in this queue: every sample in it has a person's label. Untick **Skip "
            "labelled** to see them again, or pick another queue.", icon=":material/task_alt:")
    export_section()
    st.stop()


def move(step: int) -> None:
    st.session_state["queue_pos"] = min(max(st.session_state["queue_pos"] + step, 0), len(keys) - 1)


def set_label(qid, sample_id, label: str | None) -> None:
    """Save one sample's label as a person's (None clears it); a label moves on to the next sample."""
    save_labels(run, pd.DataFrame({"question_id": [qid], "sample_id": [sample_id], "label": [label],
                                   "source": ["human"]}))
    if label is not None:
        move(1)


pos = min(st.session_state["queue_pos"], len(keys) - 1)
qid, sample_id = keys[pos]
human = labels[labels["source"].eq("human")]
done = set(zip(human["question_id"], human["sample_id"]))
st.progress(sum(key in done for key in keys) / len(keys),
            text=f"{sum(key in done for key in keys):,} of {len(keys):,} samples in this queue labelled by a person")
row = (texts["question_id"] == qid).to_numpy() & (texts["sample_id"] == sample_id).to_numpy()
text, numbers = texts[row].iloc[0], samples[row].iloc[0]
saved = labels[(labels["question_id"] == qid) & (labels["sample_id"] == sample_id)]
current = (f"**{md_text(saved['label'].iloc[0])}** ({md_text(saved['source'].iloc[0])})" if len(saved)
           else "none yet")
hint = ""
if suggestions is not None:
    match = suggestions[(suggestions["question_id"] == qid) & (suggestions["sample_id"] == sample_id)]
    if len(match) and pd.notna(match["suggested_label"].iloc[0]):
        hint = (f"  \nsuggested: **{md_text(match['suggested_label'].iloc[0])}** — "
                f"{md_text(match['reason'].iloc[0])}")
verdict = {True: ":green[correct]", False: ":red[wrong]"}.get(
    None if pd.isna(numbers["is_correct"]) else bool(numbers["is_correct"]), "gold unknown")
with st.container(border=True):
    st.markdown(f"Sample **{pos + 1} of {len(keys)}** · question {md_text(qid)} · sample {md_text(sample_id)} · "
                f"w_DS **{numbers['ds_weight']:.3f}** · loss {numbers['loss']:.3f} · label: {current}  \n"
                f"{md_text(text['question'])}  \ngold **{md_text(text['gold'])}** · "
                f"answer **{md_text(text['answer'])}** · {verdict}{hint}")
    st.text(text["rationale"])
with st.container(horizontal=True):
    st.button("Previous", shortcut="P", on_click=move, args=(-1,), icon=":material/arrow_back:")
    st.button("Next", shortcut="N", on_click=move, args=(1,), icon=":material/arrow_forward:")
    for name, (label_text, key) in LABEL_KEYS.items():
        st.button(label_text, shortcut=key, on_click=set_label, args=(qid, sample_id, name))
    st.button("Clear", shortcut="0", on_click=set_label, args=(qid, sample_id, None), icon=":material/backspace:")
st.html(SHIFT_KEYS, unsafe_allow_javascript=True)
st.caption("Keys: **N** next · **P** previous · **1** redundant · **2** jumping · **3** spurious · **4** none "
           "(checked, no problem) · **0** clear. A key saves the label at once as **human** and moves on.")
export_section()
