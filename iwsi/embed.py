"""Stage `embed` helpers: base-model sentence embeddings and one 2-D map of valid + self samples.

`embed_texts` mean-pools the base model's last hidden states (torch imported inside, so importing
this module stays light); `fit_umap` fits ONE map over valid and self-generated embeddings so the
dashboard can show before/after filtering as masks over the same coordinates. The pipeline writes
the result to umap.parquet (`source, question_id, sample_id, x, y`).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
MIN_UMAP_POINTS = 10  # below this UMAP's neighbour graph is meaningless: use PCA
UMAP_FIT_MAX = 20_000  # fit on a sample above this (GSM8K scale: ~100k); the rest is transformed


def embed_texts(model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 512,
                progress=None) -> np.ndarray:
    """Mean of the last hidden states over non-padding tokens → float32 array (len(texts), hidden).
    `progress(n)` is called after each batch of n texts."""
    import torch

    from iwsi.engines.hf import mean_pooled

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                            truncation=True, max_length=max_length).to(device)
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
            mask = enc["attention_mask"].bool()  # either padding side
            out += [mean_pooled(hidden[row][mask[row]]) for row in range(len(mask))]
            if progress:
                progress(len(mask))
    width = getattr(model.config, "hidden_size", 0)
    return np.stack(out) if out else np.zeros((0, width), dtype=np.float32)


def _project(x: np.ndarray, seed: int) -> np.ndarray:
    n = len(x)
    if n < MIN_UMAP_POINTS:
        log.info("embed: %d points < %d, using PCA instead of UMAP", n, MIN_UMAP_POINTS)
        return _pca2(x)
    umap = cached_umap()
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), min_dist=0.1,
                        random_state=seed, init="spectral" if n > 30 else "random")
    if n <= UMAP_FIT_MAX:
        return reducer.fit_transform(x)
    fit_rows = np.random.default_rng(seed).choice(n, UMAP_FIT_MAX, replace=False)
    log.info("embed: fitting UMAP on %d of %d points, transforming the rest", UMAP_FIT_MAX, n)
    reducer.fit(x[fit_rows])
    return reducer.transform(x)


def cached_umap():
    """umap (a slow import: numba), its numba functions compiled once per machine instead of once per process:
    umap-learn declares them without `cache=True`, so each is given numba's own file cache here, under
    `<cache root>/numba` (numba writes a cache entry to a temporary file and renames it into place, so two
    processes at once are safe). A function numba cannot cache is compiled as before."""
    import warnings

    import numba
    import pynndescent  # noqa: F401  (declares cache=True itself: its cache stays where numba put it)
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    from iwsi.contract import cache_root

    numba.config.CACHE_DIR = str(cache_root() / "numba")
    import umap
    import umap.distances
    import umap.layouts
    import umap.umap_
    import umap.utils

    for module in (umap.umap_, umap.layouts, umap.distances, umap.utils):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value.enable_caching()
    return umap


def _pca2(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0, keepdims=True)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))  # 1-D data → y = 0


def fit_umap(valid_emb: np.ndarray, self_emb: np.ndarray, seed: int = 0,
             valid_ids: pd.DataFrame | None = None, self_ids: pd.DataFrame | None = None) -> pd.DataFrame:
    """One 2-D map over valid + self embeddings → source, question_id, sample_id, x, y.

    `valid_ids` / `self_ids` (question_id[, sample_id]) label the rows; without them the rows are
    numbered. Valid rows get sample_id -1 as in the run-directory contract."""
    both = np.concatenate([np.asarray(valid_emb, np.float32), np.asarray(self_emb, np.float32)])
    xy = _project(both, seed) if len(both) else np.zeros((0, 2))
    nv, ns = len(valid_emb), len(self_emb)
    vq = valid_ids["question_id"].to_numpy() if valid_ids is not None else np.arange(nv)
    sq = self_ids["question_id"].to_numpy() if self_ids is not None else np.arange(ns)
    ss = self_ids["sample_id"].to_numpy() if self_ids is not None else np.zeros(ns, dtype=int)
    return pd.DataFrame({"source": ["valid"] * nv + ["self"] * ns,
                         "question_id": np.concatenate([vq, sq]) if nv + ns else [],
                         "sample_id": np.concatenate([np.full(nv, -1), ss]).astype(int),
                         "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32)})
