"""Dataset `strategyqa`: reads `train.jsonl` / `test.jsonl` (fields `question`, `answer` bool, `facts`).

Returns task "yesno" splits; questions are shown as "<question> Answer choices: A) yes; B) no"
(the paper's format). The valid rationale is the human facts joined, then "The answer is yes/no.".
"""
from __future__ import annotations

from iwsi.answers import normalize_gold
from iwsi.datasets._io import DatasetError, Row, clean_text, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import rationale_text, yesno_question
from iwsi.records import Question, Splits

NAME = "strategyqa"


def _facts(row: Row) -> list[str]:
    facts = row.data.get("facts") or []
    if not isinstance(facts, list):
        raise DatasetError(f"{row.where()}: field 'facts' must be a list of strings")
    return [clean_text(str(f)).replace("\n", " ") for f in facts if str(f).strip()]


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    gold = normalize_gold(row.get("answer"), "yesno")
    if gold is None:
        raise DatasetError(f"{row.where()}: cannot parse answer {row.get('answer')!r} as yes/no")
    rationale = rationale_text(" ".join(_facts(row)), gold) if with_rationale else None
    return Question(question_id, yesno_question(row.text("question")), "yesno", gold, rationale)


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    train = read_rows(require_file(folder, "train", NAME))
    test = read_rows(require_file(folder, "test", NAME)) if sizes.test_size else []
    return make_splits(NAME, train, test, sizes, to_question, has_rationale=lambda row: bool(_facts(row)))
