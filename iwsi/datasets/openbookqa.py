"""Dataset `openbookqa`: reads train / validation (or dev) / test JSONL in the Hugging Face `main`
schema (`id, question_stem, choices {text, label}, answerKey`) from data_dir.

Returns task "choice" splits, options listed in the question. OpenBookQA has no written rationales:
the valid rationale uses `fact1` when present (the `additional` schema), else it only restates the
correct option (noted in `Splits.notes`).
"""
from __future__ import annotations

from iwsi.answers import normalize_gold
from iwsi.datasets._io import DatasetError, Row, clean_text, pool_file, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import rationale_text, with_choices
from iwsi.records import Question, Splits

NAME = "openbookqa"


def options(row: Row, choices: object) -> list[tuple[str, str]]:
    """[(label, text)] from a {text: [...], label: [...]} dict or a [{label, text}] list."""
    if isinstance(choices, dict) and isinstance(choices.get("text"), list) and isinstance(choices.get("label"), list):
        pairs = list(zip(choices["label"], choices["text"]))
    elif isinstance(choices, list) and all(isinstance(c, dict) and "label" in c and "text" in c for c in choices):
        pairs = [(c["label"], c["text"]) for c in choices]
    else:
        raise DatasetError(f"{row.where()}: field 'choices' must be {{text: [..], label: [..]}} or [{{label, text}}]")
    return [(str(label).strip().upper(), clean_text(str(text))) for label, text in pairs]


def choice_gold(row: Row, opts: list[tuple[str, str]], key: str = "answerKey") -> str:
    gold = normalize_gold(row.get(key), "choice")
    if gold is None or gold not in dict(opts):
        labels = [label for label, _ in opts]
        raise DatasetError(f"{row.where()}: {key} {row.get(key)!r} is not one of the option labels {labels}")
    return gold


def choice_rationale(explanation: str, opts: list[tuple[str, str]], gold: str) -> str:
    """Rationale from a human explanation, or just the correct option when there is none."""
    text = explanation.strip() or f"The correct option is {dict(opts)[gold]}."
    return rationale_text(text, gold)


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    opts = options(row, row.get("choices"))
    gold = choice_gold(row, opts)
    fact = row.data.get("fact1")
    rationale = choice_rationale(fact.rstrip(".") + "." if isinstance(fact, str) and fact.strip() else "", opts, gold)
    return Question(question_id, with_choices(row.text("question_stem"), opts), "choice", gold,
                    rationale if with_rationale else None)


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    train_file, split, notes = pool_file(folder, NAME)
    train = read_rows(train_file)
    test = read_rows(require_file(folder, "test", NAME)) if sizes.test_size else []
    if not any("fact1" in row.data for row in train):
        notes.append("openbookqa has no human rationales (main schema): "
                     "valid rationales only restate the correct option")
    return make_splits(NAME, train, test, sizes, to_question, train_split=split, notes=notes)
