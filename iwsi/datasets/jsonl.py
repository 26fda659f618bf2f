"""Dataset `jsonl`: the user's own data. data_dir is one .jsonl file or a folder of .jsonl files.

A folder with train / test files (conventional names, see `_io.SPLIT_NAMES`) is split like the
paper's datasets; a single file (or a folder of other .jsonl files, read in name order) is split
into train = all but the last `test_size` rows, test = the last `test_size` rows.
`fields` maps "question" / "answer" / "rationale" to the user's field names (defaults: the same
names) and may give "task"; otherwise the task is inferred from the answers: all numbers ->
number, all yes/no -> yesno, all letters A–E -> choice, all NLI labels -> nli. Pool rows may lack
an answer (gold None); valid rows need a rationale and an answer, test rows an answer. A rationale
that does not already end in "The answer is <gold>." gets that sentence appended.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iwsi.answers import extract_answer, normalize_gold
from iwsi.datasets._io import DatasetError, Row, find_split_file, read_rows, require_dir, short
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import rationale_text
from iwsi.records import TASKS, Question, Splits

NAME = "jsonl"
FIELD_KEYS = ("question", "answer", "rationale", "task")


@dataclass(frozen=True)
class Fields:
    question: str = "question"
    answer: str = "answer"
    rationale: str = "rationale"
    task: str | None = None


def parse_fields(fields: dict | None) -> Fields:
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(FIELD_KEYS))
    if unknown:
        raise DatasetError(f"jsonl: unknown fields key(s) {unknown}; allowed: {', '.join(FIELD_KEYS)}")
    if fields.get("task") is not None and fields["task"] not in TASKS:
        raise DatasetError(f"jsonl: fields.task {fields['task']!r} is not one of {', '.join(TASKS)}")
    return Fields(**{k: v for k, v in fields.items() if v is not None})


def _is_yesno(value: object) -> bool:
    return isinstance(value, bool) or str(value).strip().lower() in ("yes", "no", "true", "false")


def _is_letter(value: object) -> bool:
    return isinstance(value, str) and value.strip().strip("()").upper() in tuple("ABCDE") and len(value.strip()) <= 3


def _is_nli(value: object) -> bool:
    return not isinstance(value, bool) and normalize_gold(value, "nli") is not None and len(str(value)) < 40


# Checked in this order: yes/no before nli because every yes/no answer is also an NLI label.
_TASK_TESTS = (("number", lambda v: normalize_gold(v, "number") is not None), ("yesno", _is_yesno),
               ("choice", _is_letter), ("nli", _is_nli))


def infer_task(rows: list[Row], answer_key: str) -> str:
    answers = [row.data[answer_key] for row in rows if row.data.get(answer_key) is not None]
    if not answers:
        raise DatasetError(f"jsonl: no row has an answer field {answer_key!r}; map it with fields.answer")
    for task, test in _TASK_TESTS:
        if all(test(a) for a in answers):
            return task
    odd = next(row for row in rows if row.data.get(answer_key) is not None
               and not _TASK_TESTS[0][1](row.data[answer_key]))
    raise DatasetError(f"jsonl: cannot infer the task from the answers (e.g. {odd.where()}: "
                       f"{short(odd.data[answer_key])}); set fields.task to one of {', '.join(TASKS)}")


def converter(f: Fields, task: str):
    """The convert(row, question_id, with_rationale) function for these field names and task."""
    def gold_of(row: Row, required: bool) -> str | None:
        if row.data.get(f.answer) is None and not required:
            return None
        gold = normalize_gold(row.get(f.answer), task)
        if gold is None:
            raise DatasetError(f"{row.where()}: cannot parse answer {short(row.get(f.answer))} as a {task} answer")
        return gold

    def convert(row: Row, question_id: str, with_rationale: bool) -> Question:
        required = with_rationale or "-test-" in question_id
        gold = gold_of(row, required)
        rationale = _rationale(row.text(f.rationale), gold, task) if with_rationale else None
        return Question(question_id, row.text(f.question), task, gold, rationale)
    return convert


def _rationale(text: str, gold: str, task: str) -> str:
    if extract_answer(text, task) == gold and text.rstrip().endswith("."):
        return text
    return rationale_text(text, gold)


def _read_folder(folder: Path) -> tuple[list[Row], list[Row], list[str]]:
    """(train rows, test rows or [] when the folder has no split files, notes)."""
    train_file, test_file = find_split_file(folder, "train"), find_split_file(folder, "test")
    if train_file and test_file:
        return read_rows(train_file), read_rows(test_file), []
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise DatasetError(f"jsonl: no .jsonl files in {folder}; "
                           "give a .jsonl file or a folder with train.jsonl and test.jsonl")
    rows = [row for path in files for row in read_rows(path)]
    return rows, [], [f"jsonl: read {len(files)} file(s) from {folder} as one table"]


def _split_tail(rows: list[Row], test_size: int, notes: list[str]) -> tuple[list[Row], list[Row]]:
    if test_size == 0:
        return rows, []
    if len(rows) <= test_size:
        raise DatasetError(f"jsonl: {len(rows)} rows, not more than test_size = {test_size}; lower test_size")
    notes.append(f"jsonl: no separate test file: test = the last {test_size} rows")
    return rows[:-test_size], rows[-test_size:]


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    f = parse_fields(fields)
    path = require_dir(data_dir, NAME)
    if path.is_dir():
        train, test, notes = _read_folder(path)
    else:
        train, test, notes = read_rows(path), [], []
    if not train and not test:  # else "0 rows, not more than test_size" would blame test_size
        raise DatasetError(f"jsonl: {path} holds no records (empty, or blank lines only): "
                           "add one JSON object per line")
    if not test:
        train, test = _split_tail(train, sizes.test_size, notes)
    task = f.task or infer_task(train + test, f.answer)
    return make_splits(NAME, train, test, sizes, converter(f, task),
                       has_rationale=lambda row: isinstance(row.data.get(f.rationale), str)
                       and bool(row.data[f.rationale].strip()), notes=notes + [f"jsonl task: {task}"])
