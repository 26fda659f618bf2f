"""Shared reading helpers for dataset loaders: JSONL/JSON files with line-numbered errors.

`read_rows(path)` returns one `Row` per record (JSONL, or a JSON array), each remembering its file
and line so that every later error can say exactly where to look. `find_split_file` locates a
split file in a folder by its conventional names.
"""
from __future__ import annotations

import json
import os
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message names the file, line/field and what to do."""


# A data file is read whole; past this it is refused rather than exhausting memory (1 GiB is ~100x GSM8K).
MAX_FILE_BYTES = 1 << 30

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = 4
_SHORT.maxlevel = 2


def short(value: object) -> str:
    """A bounded repr for error messages: a YAML alias bomb or a huge record prints a few elements, not
    millions (the full repr of a 9**9-element structure never returns)."""
    return _SHORT.repr(value)


@dataclass(frozen=True)
class Row:
    """One record of a data file and where it came from (1-based line number)."""

    path: Path
    line: int
    data: dict

    def where(self) -> str:
        return f"{self.path} line {self.line}"

    def get(self, key: str) -> Any:
        """The field `key`; a missing or null field is an error naming file, line and field."""
        value = self.data.get(key)
        if value is None:
            present = ", ".join(sorted(self.data)) or "none"
            raise DatasetError(f"{self.where()}: missing field {key!r} (fields present: {present}); "
                               "fix the record or map the field name")
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"{self.where()}: field {key!r} must be a non-empty string, got {short(value)}")
        return clean_text(value)


def clean_text(text: str) -> str:
    """Strip and collapse blank lines: a blank line inside a prompt would end generation early."""
    return re.sub(r"\n\s*\n+", "\n", text.strip())


def require_dir(data_dir: object, dataset: str) -> Path:
    if data_dir is None or str(data_dir) == "":
        raise DatasetError(f"{dataset}: no data_dir given; set data_dir to the folder holding the dataset files")
    path = Path(os.path.expanduser(str(data_dir)))  # Path.expanduser raises for an unknown ~user
    if not path.exists():
        raise DatasetError(f"{dataset}: data_dir {path} does not exist; check the path (relative paths start at "
                           "the working directory)")
    return path


def read_rows(path: Path) -> list[Row]:
    """All records of a JSONL file (blank lines skipped) or of a JSON array file (a UTF-8 BOM is allowed).

    Only a regular file of at most MAX_FILE_BYTES is read: a FIFO would block and /dev/zero never ends."""
    if path.exists() and not path.is_file():
        raise DatasetError(f"{path}: not a regular file (a folder, FIFO or device); give a .jsonl file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} iwsi reads; keep the rows "
                               "you need in a smaller file")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror}); check the file exists and is readable") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text; save it as UTF-8 JSONL") from None
    if text.lstrip().startswith("["):
        return _read_array(path, text)
    return [_parse_line(path, n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _parse_line(path: Path, number: int, line: str) -> Row:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} line {number}: not valid JSON ({err.msg}); "
                           "each line must be one JSON object") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise DatasetError(f"{path} line {number}: JSON nested too deeply; "
                           "each line must be one flat JSON object") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} line {number}: expected a JSON object, got {type(data).__name__}")
    _check_encodable(data, f"{path} line {number}")
    return Row(path, number, data)


def _check_encodable(data: dict, where: str) -> None:
    # JSON may escape a lone UTF-16 surrogate ("\\ud800"): a tokenizer fails on it mid-run.
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise DatasetError(f"{where}: holds an invalid character (a lone surrogate such as \\ud800); "
                           "fix or remove it") from None


def _read_array(path: Path, text: str) -> list[Row]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} line {err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply; give an array of flat objects") from None
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DatasetError(f"{path} item {i}: expected a JSON object, got {type(item).__name__}")
        _check_encodable(item, f"{path} item {i}")
        rows.append(Row(path, i + 1, item))  # "line" is the item number for a JSON array
    return rows


# Conventional file stems per split, most specific first.
SPLIT_NAMES = {
    "train": ("train", "train_rand_split"),
    "dev": ("dev", "validation", "valid", "val", "dev_rand_split"),
    "test": ("test", "test_rand_split"),
}


def find_split_file(folder: Path, split: str) -> Path | None:
    """`folder/<name>.jsonl` (or .json) for the split's conventional names, or None."""
    for stem in SPLIT_NAMES[split]:
        for ext in (".jsonl", ".json"):
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None


def require_file(folder: Path, split: str, dataset: str) -> Path:
    path = find_split_file(folder, split)
    if path is None:
        names = ", ".join(f"{s}.jsonl" for s in SPLIT_NAMES[split])
        raise DatasetError(f"{dataset}: no {split} file in {folder} (looked for {names}); "
                           "put the file there or fix data_dir")
    return path


def pool_file(folder: Path, dataset: str) -> tuple[Path, str, list[str]]:
    """The train file, or (public copies often lack it) the dev file, said so in a note.

    Returns (path, split name, notes)."""
    train = find_split_file(folder, "train")
    if train is not None:
        return train, "train", []
    dev = require_file(folder, "dev", dataset)
    return dev, "dev", [f"no train file in {folder}: pool and valid set taken from {dev.name}"]
