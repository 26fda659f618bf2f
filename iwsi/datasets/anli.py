"""Datasets `anli-r1/r2/r3`: reads `train.jsonl`, `dev.jsonl`, `test.jsonl` from data_dir or data_dir/R<n>.

Accepts ANLI v1.0 records (`context, hypothesis, label` in e/n/c, `reason`) and the Hugging Face form
(`premise, hypothesis, label` 0/1/2, `reason`). Returns task "nli" splits with gold "yes"
(entailment), "no" (contradiction) or "it is not possible to tell" (neutral). The valid rationale is
the annotator's `reason`; held-out rows with an empty reason are skipped (and counted in the notes).
When the folder has no train file, dev is the pool (noted in `Splits.notes`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from iwsi.answers import NOT_SURE
from iwsi.datasets._io import DatasetError, Row, clean_text, pool_file, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import nli_question, rationale_text
from iwsi.records import Question, Splits

# v1.0 letters, Hugging Face class ids, and spelled-out names.
LABELS = {"e": "yes", "n": NOT_SURE, "c": "no", 0: "yes", 1: NOT_SURE, 2: "no",
          "entailment": "yes", "neutral": NOT_SURE, "contradiction": "no"}


def _gold(row: Row) -> str:
    label = row.get("label")
    key = label.strip().lower() if isinstance(label, str) else label
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, bool) or key not in LABELS:
        raise DatasetError(f"{row.where()}: label {label!r} is not e/n/c or 0/1/2; fix the record")
    return LABELS[key]


def _reason(row: Row) -> str:
    reason = row.data.get("reason")
    return clean_text(reason).replace("\n", " ") if isinstance(reason, str) else ""


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    premise = row.text("context") if "context" in row.data else row.text("premise")
    question = nli_question(premise, row.text("hypothesis"))
    gold = _gold(row)
    rationale = rationale_text(_reason(row), gold) if with_rationale else None
    return Question(question_id, question, "nli", gold, rationale)


def _round_folder(data_dir: object, name: str, round_name: str) -> Path:
    folder = require_dir(data_dir, name)
    for sub in (folder / round_name, folder / round_name.lower()):
        if sub.is_dir():
            return sub
    return folder


def load_round(data_dir: object, sizes: Sizes, round_name: str) -> Splits:
    name = f"anli-{round_name.lower()}"
    folder = _round_folder(data_dir, name, round_name)
    train_file, split, notes = pool_file(folder, name)
    test = read_rows(require_file(folder, "test", name)) if sizes.test_size else []
    return make_splits(name, read_rows(train_file), test, sizes, to_question,
                       has_rationale=lambda row: bool(_reason(row)), train_split=split, notes=notes)


def loader(round_name: str) -> Callable[[object, Sizes, int, dict | None], Splits]:
    """The `load` function for one ANLI round ("R1", "R2", "R3")."""
    def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
        return load_round(data_dir, sizes, round_name)
    return load
