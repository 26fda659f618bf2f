"""Dataset loaders: `load_splits(name, data_dir, ...)` returns `Splits` (pool / valid / test).

Each family lives in its own module exposing `load(data_dir, sizes, seed, fields) -> Splits`;
`LOADERS` maps dataset names to those functions and `DATASETS` lists the names for config checks.
Every problem with the data raises `DatasetError` (a ValueError) with a one-line message that names
the file and the line or field and says what to do. Rows are never dropped silently.
"""
from __future__ import annotations

from typing import Callable

from iwsi.datasets import anli, aqua, commonsenseqa, gsm8k, jsonl, openbookqa, strategyqa, svamp, synthetic
from iwsi.datasets._io import DatasetError, short
from iwsi.datasets._split import Sizes
from iwsi.records import Splits

Loader = Callable[[object, Sizes, int, "dict | None"], Splits]

LOADERS: dict[str, Loader] = {
    "synthetic-arith": synthetic.load,
    "gsm8k": gsm8k.load,
    "svamp": svamp.load,
    "strategyqa": strategyqa.load,
    "anli-r1": anli.loader("R1"),
    "anli-r2": anli.loader("R2"),
    "anli-r3": anli.loader("R3"),
    "openbookqa": openbookqa.load,
    "aqua": aqua.load,
    "commonsenseqa": commonsenseqa.load,
    "jsonl": jsonl.load,
}
DATASETS = tuple(LOADERS)

__all__ = ["DATASETS", "LOADERS", "DatasetError", "Sizes", "load_splits", "short", "valid_pool"]


def load_splits(name: str, data_dir: object, num_questions: int, valid_size: int, test_size: int,
                seed: int = 0, fields: dict | None = None) -> Splits:
    """Load dataset `name` from `data_dir` and split it as in the paper (see `_split`)."""
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return LOADERS[name](data_dir, Sizes(num_questions, valid_size, test_size), seed, fields)


def valid_pool(cfg, valid: list) -> list:
    """Up to `cfg.valid_pool` human rationales of the valid split after D_v (`valid`), for the D_v
    stability readout: the same rows a larger valid_size would take, fewer when the split has fewer
    (halved until they fit), none when a larger draw would not keep D_v as its first rows."""
    extra = cfg.valid_pool
    while extra > 0:
        try:
            splits = load_splits(cfg.dataset, cfg.data_dir, cfg.num_questions, cfg.valid_size + extra, 0, cfg.seed,
                                 cfg.fields or None)
        except DatasetError:
            extra //= 2
            continue
        same = [q.question_id for q in splits.valid[:len(valid)]] == [q.question_id for q in valid]
        return splits.valid[len(valid):] if same else []
    return []
