"""Dataset `commonsenseqa`: reads `train_rand_split.jsonl` (or `train.jsonl`), the dev file and the
test file from data_dir (fields `answerKey, id, question {stem, choices [{label, text}]}`).

Returns task "choice" splits. The public test file has no answers: then dev is used as the test split
(noted). There are no human rationales: the valid rationale only restates the correct option (noted).
"""
from __future__ import annotations

from pathlib import Path

from iwsi.datasets._io import DatasetError, Row, find_split_file, pool_file, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.datasets.openbookqa import choice_gold, choice_rationale, options
from iwsi.prompts import with_choices
from iwsi.records import Question, Splits

NAME = "commonsenseqa"


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    q = row.get("question")
    if not isinstance(q, dict) or not isinstance(q.get("stem"), str):
        raise DatasetError(f"{row.where()}: field 'question' must be an object with 'stem' and 'choices'")
    opts = options(row, q.get("choices"))
    gold = choice_gold(row, opts)
    rationale = choice_rationale("", opts, gold) if with_rationale else None
    return Question(question_id, with_choices(q["stem"], opts), "choice", gold, rationale)


def _test_rows(folder: Path, notes: list[str]) -> list[Row]:
    test_file = find_split_file(folder, "test")
    rows = read_rows(test_file) if test_file else []
    if rows and all(row.data.get("answerKey") for row in rows):
        return rows
    dev = require_file(folder, "dev", NAME)
    notes.append(f"no labelled test file in {folder}: test split taken from {dev.name}")
    return read_rows(dev)


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    notes = ["commonsenseqa has no human rationales: valid rationales only restate the correct option"]
    pool_path, split, pool_notes = pool_file(folder, NAME)  # like the other loaders: dev when there is no train
    notes += pool_notes
    train = read_rows(pool_path)
    test = _test_rows(folder, notes) if sizes.test_size else []
    if test and test[0].path == pool_path:  # pool, valid and test all from the dev file: no overlap
        test = test[sizes.num_questions + sizes.valid_size:]
        notes.append(f"test split: the {pool_path.name} rows after the pool and the valid set")
    return make_splits(NAME, train, test, sizes, to_question, train_split=split, notes=notes)
