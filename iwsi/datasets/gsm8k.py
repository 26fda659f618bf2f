"""Dataset `gsm8k`: reads `train.jsonl` / `test.jsonl` (fields `question`, `answer`) from data_dir.

Returns task "number" splits. The rationale is the worked solution with calculator annotations
`<<...>>` removed and the final "#### N" line replaced by " The answer is N."; gold is N normalised.
"""
from __future__ import annotations

import re

from iwsi.answers import normalize_number
from iwsi.datasets._io import DatasetError, Row, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import rationale_text
from iwsi.records import Question, Splits

NAME = "gsm8k"


def parse_solution(row: Row) -> tuple[str, str]:
    """(rationale, gold) from a GSM8K `answer` field."""
    solution = row.text("answer")
    if "####" not in solution:
        raise DatasetError(f"{row.where()}: field 'answer' has no '#### N' final answer line")
    steps, final = solution.rsplit("####", 1)
    gold = normalize_number(final)
    if gold is None:
        raise DatasetError(f"{row.where()}: cannot parse the final answer {final.strip()!r} as a number")
    steps = re.sub(r"<<[^>]*>>", "", steps).strip()
    return rationale_text(steps, gold), gold


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    rationale, gold = parse_solution(row)
    return Question(question_id, row.text("question"), "number", gold, rationale if with_rationale else None)


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    train = read_rows(require_file(folder, "train", NAME))
    test = read_rows(require_file(folder, "test", NAME)) if sizes.test_size else []
    return make_splits(NAME, train, test, sizes, to_question)
