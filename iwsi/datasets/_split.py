"""The paper's split rule, shared by every file-based loader.

pool  = the first `num_questions` rows of train (question + gold; the gold is for analysis only),
valid = the next `valid_size` held-out train rows that carry a human rationale,
test  = the first `test_size` rows of the test file.
Question ids are "<dataset>-<split>-<row index in its file>", stable across runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from iwsi.datasets._io import DatasetError, Row
from iwsi.records import Question, Splits

# convert(row, question_id, with_rationale) -> Question
Convert = Callable[[Row, str, bool], Question]


@dataclass(frozen=True)
class Sizes:
    num_questions: int
    valid_size: int
    test_size: int


def check_sizes(dataset: str, sizes: Sizes) -> None:
    if sizes.num_questions < 1:
        raise DatasetError(f"{dataset}: num_questions must be at least 1, got {sizes.num_questions}")
    if sizes.valid_size < 1:
        raise DatasetError(f"{dataset}: valid_size must be at least 1 (the valid set is needed to score losses), "
                           f"got {sizes.valid_size}")
    if sizes.test_size < 0:
        raise DatasetError(f"{dataset}: test_size must be 0 or more, got {sizes.test_size}")


def make_splits(dataset: str, train: list[Row], test: list[Row], sizes: Sizes, convert: Convert,
                has_rationale: Callable[[Row], bool] = lambda row: True, train_split: str = "train",
                notes: list[str] | None = None) -> Splits:
    """Apply the split rule; too few rows for the requested sizes is a DatasetError."""
    check_sizes(dataset, sizes)
    notes = list(notes or [])
    _check_enough(dataset, train, sizes.num_questions + sizes.valid_size, "num_questions + valid_size", train_split)
    _check_enough(dataset, test, sizes.test_size, "test_size", "test")
    n = sizes.num_questions
    pool = [convert(row, f"{dataset}-{train_split}-{i}", False) for i, row in enumerate(train[:n])]
    valid = _take_valid(dataset, train, n, sizes.valid_size, convert, has_rationale, train_split, notes)
    tests = [convert(row, f"{dataset}-test-{i}", False) for i, row in enumerate(test[:sizes.test_size])]
    return Splits(pool=pool, valid=valid, test=tests, notes=notes)


def _check_enough(dataset: str, rows: list[Row], needed: int, what: str, split: str) -> None:
    if needed == 0:
        return
    if not rows:
        raise DatasetError(f"{dataset}: the {split} file has no records; check the file is not empty")
    if len(rows) < needed:
        raise DatasetError(f"{dataset}: {rows[0].path} has {len(rows)} rows, fewer than {what} = {needed}; "
                           f"lower {what.split(' ')[0]}")


def _take_valid(dataset: str, train: list[Row], start: int, size: int, convert: Convert,
                has_rationale: Callable[[Row], bool], train_split: str, notes: list[str]) -> list[Question]:
    """The first `size` rows after the pool that have a rationale (rows without one are counted)."""
    valid, skipped = [], 0
    for i in range(start, len(train)):
        if len(valid) == size:
            break
        if has_rationale(train[i]):
            valid.append(convert(train[i], f"{dataset}-{train_split}-{i}", True))
        else:
            skipped += 1
    if len(valid) < size:
        raise DatasetError(f"{dataset}: only {len(valid)} rows after the first {start} of {train[0].path} have a "
                           f"usable rationale, fewer than valid_size = {size}; lower num_questions or valid_size")
    if skipped:
        notes.append(f"valid set: skipped {skipped} held-out {train_split} rows without a usable rationale")
    return valid
