"""The labelling queue across questions (Label queue page): which samples, in which order, and the label export
with its sources — on hand-made tables, then on the page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import make_run_dir
from iwsi.runs import QUEUES, label_queue, labels_export, read_labels, save_labels
from tests.pages import open_page

SAMPLES = pd.DataFrame({"question_id": ["a", "a", "b", "b", "c"], "sample_id": [0, 1, 0, 1, 0],
                        "is_majority": [True, False, True, True, True], "ds_weight": [1.5, 9.0, 2.5, 1.1, np.nan],
                        "loss": [0.5, 3.0, 2.0, 1.0, 4.0], "question": list("AABBC"), "rationale": list("vwxyz"),
                        "answer": ["1", "2", "3", "3", "4"], "gold": ["1", "1", "3", "3", "5"],
                        "is_correct": [True, False, True, True, False]})
NO_LABELS = pd.DataFrame(columns=["question_id", "sample_id", "label", "source", "updated"])


def keys(frame) -> list[tuple]:
    return list(zip(frame["question_id"], frame["sample_id"]))


def test_queues_rank_across_questions_within_d_c():
    assert keys(label_queue(SAMPLES, NO_LABELS, "highest w_DS in D_c", 10)) == [("b", 0), ("a", 0), ("b", 1), ("c", 0)]
    assert keys(label_queue(SAMPLES, NO_LABELS, "lowest w_DS in D_c", 2)) == [("b", 1), ("a", 0)]
    assert keys(label_queue(SAMPLES, NO_LABELS, "highest loss in D_c", 1)) == [("c", 0)]
    assert keys(label_queue(SAMPLES, NO_LABELS, "every sample, highest w_DS first", 1)) == [("a", 1)]  # outside D_c
    assert label_queue(SAMPLES, NO_LABELS, "highest w_DS in D_c", 0).empty


def test_a_persons_labels_leave_the_queue_and_suggestions_do_not():
    labels = pd.DataFrame({"question_id": ["b", "a"], "sample_id": [0, 0], "label": ["jumping", "none"],
                           "source": ["human", "suggested"], "updated": ["t", "t"]})
    assert keys(label_queue(SAMPLES, labels, "highest w_DS in D_c", 2)) == [("a", 0), ("b", 1)]
    assert keys(label_queue(SAMPLES, labels, "highest w_DS in D_c", 2, skip_labelled=False)) == [("b", 0), ("a", 0)]


def test_an_unknown_queue_names_the_known_ones():
    with pytest.raises(ValueError, match="choose one of " + ", ".join(QUEUES)):
        label_queue(SAMPLES, NO_LABELS, "newest", 5)


def test_the_export_is_every_label_with_its_source_and_sample():
    labels = pd.DataFrame({"question_id": ["b", "a"], "sample_id": [1, 1], "label": ["spurious", "redundant"],
                           "source": ["human", "suggested"], "updated": ["t1", "t2"]})
    out = labels_export(SAMPLES, labels)
    assert out[["question_id", "sample_id", "label", "source", "rationale", "ds_weight"]].values.tolist() == [
        ["b", 1, "spurious", "human", "y", 1.1], ["a", 1, "redundant", "suggested", "w", 9.0]]


def test_the_page_labels_across_questions_by_key_and_exports(cache):
    run = make_run_dir(cache / "runs" / "r", num_questions=12, num_samples=4, seed=1)
    samples = pd.read_parquet(run / "samples.parquet")
    expected = keys(label_queue(samples, read_labels(run), "highest w_DS in D_c", 50))
    n = len(expected)
    assert n > 3
    at = open_page("views/queue.py")
    assert any(f"0 of {n} samples" in p.proto.text for p in at.get("progress"))
    [b for b in at.button if b.label == "Spurious"][0].click().run()
    [b for b in at.button if b.label == "Redundant"][0].click().run()
    assert not at.exception
    saved = read_labels(run)
    assert keys(saved) == expected[:2] and saved["label"].tolist() == ["spurious", "redundant"]
    assert set(saved["source"]) == {"human"}
    assert any(f"2 of {n} samples" in p.proto.text for p in at.get("progress"))
    assert any(f"Sample **3 of {n}**" in m.value for m in at.markdown)
    [b for b in at.button if b.label == "Previous"][0].click().run()
    assert any(f"Sample **2 of {n}**" in m.value and "label: **redundant** (human)" in m.value for m in at.markdown)
    save_labels(run, pd.DataFrame({"question_id": [expected[-1][0]], "sample_id": [expected[-1][1]],
                                   "label": ["none"], "source": ["suggested"]}))
    at.run()
    jsonl = next(b for b in at.get("download_button") if b.proto.label == "labels.jsonl")
    assert jsonl is not None
    rows = labels_export(samples, read_labels(run))
    assert sorted(rows["source"]) == ["human", "human", "suggested"]
    assert [json.loads(line)["source"] for line in rows.to_json(orient="records", lines=True).splitlines()] == \
        rows["source"].tolist()
