"""Helpers shared by the dashboard pages: cached table reads, the selected run and k, empty states.

Reads run-directory files only (docs/run-directory.md); never imports torch or transformers.
Tables are cached by (path, mtime, columns), so a rewritten file is picked up on the next rerun.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import streamlit as st

from iwsi.export import kept_mask
from iwsi.runs import WRITTEN_BY, read_json

# Columns every chart page needs; the text columns are loaded only where rationales are shown.
NUMERIC = ["question_id", "sample_id", "is_correct", "is_majority", "entropy", "loss", "w_prime", "ds_weight"]
TEXT = ["question_id", "sample_id", "question", "rationale", "answer", "gold"]
EMPTY_HINT = "No runs yet — click **Run embedded demo** on the Runs page or run `make run`."


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@st.cache_data(max_entries=16, show_spinner=False)
def _read_parquet(path: str, stamp: float, columns: tuple[str, ...] | None) -> pd.DataFrame:
    return _read(path, columns)


@st.cache_resource(max_entries=4, show_spinner=False)
def _read_parquet_shared(path: str, stamp: float, columns: tuple[str, ...] | None) -> pd.DataFrame:
    # Text tables are ~20 MB at 100k rows: cache_data would pickle a copy on every rerun.
    # Pages treat this frame as read-only.
    return _read(path, columns)


def _read(path: str, columns: tuple[str, ...] | None) -> pd.DataFrame:
    """Read only the wanted columns that this file has (optional columns may be absent)."""
    if columns:
        present = set(pq.read_schema(path).names)
        columns = [c for c in columns if c in present]
    return pd.read_parquet(path, columns=list(columns) if columns else None)


def table(run: Path, name: str, columns: list[str] | None = None, shared: bool = False) -> pd.DataFrame | None:
    """RUN/name as a DataFrame (None when the file is missing)."""
    path = run / name
    stamp = mtime(path)
    if stamp < 0:
        return None
    reader = _read_parquet_shared if shared else _read_parquet
    return reader(str(path), stamp, tuple(columns) if columns else None)


@st.cache_data(max_entries=64, show_spinner=False)
def _kept(path: str, stamp: float, k: float) -> tuple[np.ndarray, float]:
    df = _read_parquet(path, stamp, tuple(NUMERIC))
    return kept_mask(df["ds_weight"].to_numpy(float), df["is_majority"].to_numpy(bool), k)


def kept_for_k(run: Path, k: float) -> tuple[np.ndarray, float]:
    """Mask of the samples kept at k (k % of D_c with the lowest DS weight) and σ_k%."""
    path = run / "samples.parquet"
    return _kept(str(path), mtime(path), float(k))


def metrics(run: Path) -> dict:
    return read_json(run / "metrics.json") or {}


def selected_run() -> Path | None:
    return st.session_state.get("run_path")


def selected_k() -> float:
    return float(st.session_state.get("k", 80))


def header(title: str, explanation: str) -> None:
    st.title(title)
    st.caption(explanation)


def require_samples() -> tuple[Path, pd.DataFrame]:
    """The selected run and its samples (numeric columns), or an empty state and stop."""
    run = selected_run()
    if run is None:
        st.info(EMPTY_HINT, icon=":material/info:")
        st.stop()
    samples = table(run, "samples.parquet", NUMERIC)
    if samples is None:
        st.info(f"Run **{run.name}** has no `samples.parquet` yet: it is written by the "
                f"**{WRITTEN_BY['samples.parquet']}** stages. Follow its progress on the Runs page.",
                icon=":material/hourglass_top:")
        st.stop()
    return run, samples


def missing(run: Path, name: str) -> None:
    st.info(f"`{name}` is missing in run **{run.name}**: it is written by the **{WRITTEN_BY.get(name, 'pipeline')}** "
            f"stage{' (enable `embed=true`)' if name in ('umap.parquet', 'suggestions.parquet') else ''}.",
            icon=":material/info:")
