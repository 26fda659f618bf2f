"""Dataset `aqua`: reads AQuA-RAT `train.json` / `dev.json` / `test.json` (JSONL despite the name;
fields `question, options ["A)32400", ...], rationale, correct`) from data_dir.

Returns task "choice" splits with the options listed in the question. The valid rationale is the
human rationale with its trailing "Answer: X" line replaced by "The answer is X.".
"""
from __future__ import annotations

import re

from iwsi.datasets._io import DatasetError, Row, pool_file, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.datasets.openbookqa import choice_gold, choice_rationale
from iwsi.prompts import with_choices
from iwsi.records import Question, Splits

NAME = "aqua"
_OPTION = re.compile(r"\s*\(?([A-Ea-e])\s*\)\s*(.*)", re.DOTALL)
_ANSWER_LINE = re.compile(r"\n[^\n]{0,12}\b(?:answer|ans)\b[^\n]{0,30}$", re.IGNORECASE)
_LETTER_LINE = re.compile(r"\n\s*\(?[A-Ea-e]\s*\)?\s*[.:]?\s*$")  # a line that is only an option letter


def parse_options(row: Row) -> list[tuple[str, str]]:
    raw = row.get("options")
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{row.where()}: field 'options' must be a list like [\"A)32400\", ...]")
    opts = []
    for option in raw:
        match = _OPTION.fullmatch(str(option))
        if not match:
            raise DatasetError(f"{row.where()}: option {option!r} does not start with a letter like 'A)'")
        opts.append((match.group(1).upper(), match.group(2).strip()))
    return opts


def clean_rationale(text: str) -> str:
    """Human rationale without its final "Answer: C"-style line (the caller appends the answer)."""
    text = "\n" + re.sub(r"\n\s*\n+", "\n", text.strip())
    # "...\nC)\nAnswer: C": the answer line goes, and so do option letters left dangling around it
    text = _strip_letters(_ANSWER_LINE.sub("", _strip_letters(text)))
    return text.strip()


def _strip_letters(text: str) -> str:
    while (shorter := _LETTER_LINE.sub("", text)) != text:
        text = shorter
    return text


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    opts = parse_options(row)
    gold = choice_gold(row, opts, key="correct")
    rationale = choice_rationale(clean_rationale(str(row.data.get("rationale") or "")), opts, gold)
    return Question(question_id, with_choices(row.text("question"), opts), "choice", gold,
                    rationale if with_rationale else None)


def _has_rationale(row: Row) -> bool:
    return bool(clean_rationale(str(row.data.get("rationale") or "")))


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    train_file, split, notes = pool_file(folder, NAME)
    test = read_rows(require_file(folder, "test", NAME)) if sizes.test_size else []
    return make_splits(NAME, read_rows(train_file), test, sizes, to_question, has_rationale=_has_rationale,
                       train_split=split, notes=notes)
