"""Helpers shared by the dashboard pages: cached table reads, the selected run and k, empty states.

Reads run-directory files only (docs/run-directory.md); never imports torch or transformers.
Tables are cached by (path, mtime, columns), so a rewritten file is picked up on the next rerun.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow.parquet as pq
import streamlit as st

from iwsi import charts, filtering
from iwsi.config import DEFAULT_K
from iwsi.contract import RUN_FILE
from iwsi.export import run_method as export_run_method
from iwsi.present import OUTCOMES, kept_mask
from iwsi.runs import (
    WRITTEN_BY,
    RunNameError,
    ablations_dir,
    finite,
    list_ablations,
    list_run_names,
    read_config,
    read_json,
    run_path,
    run_state,
    runs_dir,
)

# Columns every chart page needs; the text columns are loaded only where rationales are shown.
NUMERIC = ["question_id", "sample_id", "is_correct", "is_majority", "entropy", "loss", "w_prime", "ds_weight"]
# Read too where present: the run's kept set, IFD and the judges' scores some methods select by.
SELECTION = ["kept", "ifd"] + [m.score_column for m in filtering.METHODS.values() if m.score_column]
TEXT = ["question_id", "sample_id", "question", "rationale", "answer", "gold"]
# Streamlit's shortcuts match the key exactly, so Shift+N (what a button's badge "N" suggests) would do nothing:
# this script (the Rationales page's) makes the shifted letters click the same buttons. Registered once per browser
# tab, ignored while typing in a field. The one HTML with JavaScript the pages send (tests/test_untrusted_text.py).
SHIFT_KEYS = """<script>
if (!window.iwsiShiftKeys) {
  window.iwsiShiftKeys = true;
  document.addEventListener("keydown", (event) => {
    const target = event.target, typing = target && (target.isContentEditable
      || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    const label = {N: "Next", P: "Previous"}[event.key.toUpperCase()];
    if (!event.shiftKey || event.ctrlKey || event.metaKey || event.altKey || typing || !label) return;
    const button = [...document.querySelectorAll("button")].find(b => b.innerText.split("\\n").includes(label));
    if (button) { event.preventDefault(); button.click(); }
  });
}
</script>"""
# The labelling buttons of Rationales and Label queue: label → (button text, key), one per label of runs.LABELS.
LABEL_KEYS = {"redundant": ("Redundant", "1"), "jumping": ("Jumping", "2"), "spurious": ("Spurious", "3"),
              "none": ("None of these", "4")}
EMPTY_HINT = "No runs yet — click **Run embedded demo** on the Runs page or run `make run`."
NOT_SCORED_HINT = ("No run has DS weights yet: the **score** stage writes them into `samples.parquet`. Follow the "
                   "runs' progress on the Runs page.")
LINK_K = re.compile(r"[0-9]{1,6}")  # ASCII digits only: int() rejects '²', which str.isdigit accepts
MARKDOWN_SYNTAX = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def md_text(value) -> str:
    """`value` (dataset text, model output, a file's content) as literal text inside markdown.

    Streamlit's markdown draws images (the browser fetches their URL: a public dataset could make it
    call any host), links, autolinks, HTML, `:colour[...]` directives, icons and `$...$` LaTeX. CommonMark
    lets any ASCII punctuation be backslash-escaped, which turns each of these into its plain characters;
    lines stay lines (hard breaks), without the indentation that would start a code block. Inside a code
    span escapes show as backslashes, so escaped text is never put between backticks."""
    text = MARKDOWN_SYNTAX.sub(r"\\\1", str(value))
    return "  \n".join(line.strip() for line in text.splitlines())


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


def table(run: Path, name: str, columns: list[str] | None = None, shared: bool = False,
          stop_if_broken: bool = True, fix: str | None = None) -> pd.DataFrame | None:
    """RUN/name as a DataFrame (None when the file is missing), for a run, ablation or probe folder. A file
    that cannot be read shows one message naming it and the fix (a run's by default), then stops the page
    (or returns None with stop_if_broken=False)."""
    path = run / name
    stamp = mtime(path)
    if stamp < 0:
        return None
    reader = _read_parquet_shared if shared else _read_parquet
    try:
        return reader(str(path), stamp, tuple(columns) if columns else None)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        fix = fix or f"Rerun `iwsi run --out {run}`: the pipeline checks its files and rebuilds a broken one."
        st.error(f"`{name}` in **{run.name}** cannot be read ({type(err).__name__}: {md_text(str(err)[:120])}). {fix}",
                 icon=":material/error:")
        if stop_if_broken:
            st.stop()
        return None


def has_columns(path: Path, columns: list[str]) -> bool:
    """The parquet file exists, can be read and has these columns (e.g. a run stopped after vote has no
    ds_weight yet)."""
    try:
        return set(columns) <= set(pq.read_schema(path).names)
    except (OSError, ValueError):
        return False


@st.cache_data(max_entries=64, show_spinner=False)
def _kept(path: str, stamp: float, k: float, method: str, threshold: float | None, seed: int,
          run_k: float | None) -> tuple[np.ndarray, float]:
    return kept_mask(_read_parquet(path, stamp, tuple(NUMERIC + SELECTION)), k, method, threshold, seed, run_k)


@st.cache_data(max_entries=64, show_spinner=False)
def _figure_spec(builder: str, args: tuple, kwargs: tuple) -> dict:
    return getattr(charts, builder)(*args, **dict(kwargs)).to_dict()


def cached_figure(builder, *args, **kwargs) -> go.Figure:
    """`builder(*args, **kwargs)` (a chart builder of iwsi.charts) once per distinct input, as st.cache_data hashes
    them, then rebuilt from its dict unvalidated (charts.from_spec): plotly takes 15-25 ms to build and validate
    a figure, on every rerun (docs/benchmarks.md, 2026-12-04)."""
    return charts.from_spec(_figure_spec(builder.__name__, args, tuple(sorted(kwargs.items()))))


@st.cache_data(max_entries=32, show_spinner=False)
def _samples_figure_spec(path: str, stamp: float, majority: bool, builder: str, args: tuple, kwargs: tuple) -> dict:
    df = table(Path(path).parent, RUN_FILE.samples, NUMERIC)
    return getattr(charts, builder)(df[df["is_majority"]] if majority else df, *args, **dict(kwargs)).to_dict()


def samples_figure(run: Path, majority: bool, builder, /, *args, **kwargs) -> go.Figure:
    """`builder(samples, *args, **kwargs)` over the run's samples (only the majority ones with `majority`), as
    cached_figure does, but keyed by the table's path and mtime rather than by hashing its 100k rows."""
    path = run / RUN_FILE.samples
    return charts.from_spec(_samples_figure_spec(str(path), mtime(path), majority, builder.__name__, args,
                                                 tuple(sorted(kwargs.items()))))


def run_method(run: Path) -> tuple[str, float | None, float | None, int]:
    """(method, its entropy threshold, k, seed) the run was made with."""
    config = read_config(run)
    method, threshold, seed = export_run_method(config)
    return method, threshold, finite(config.get("k")), seed


def kept_for_k(run: Path, k: float, method: str | None = None) -> tuple[np.ndarray, float]:
    """Mask of the samples the run's method (or `method`) keeps at k, and σ_k%. At the run's own k
    and method it is the run's `kept` column; moving k recomputes that method's cut."""
    own, threshold, run_k, seed = run_method(run)
    path = run / RUN_FILE.samples
    same = method in (None, own)
    return _kept(str(path), mtime(path), float(k), method or own, threshold if same else None, seed,
                 run_k if same else None)


def metrics(run: Path) -> dict:
    return read_json(run / RUN_FILE.metrics) or {}


def sidebar() -> None:
    """Run picker and k slider, drawn once by app.py before each page (see its docstring)."""
    names = list_run_names()
    link = st.query_params  # a shared link or a reload: ?run=NAME&k=K (the page is the URL's path)
    if "run" not in st.session_state and link.get("run") in names:
        st.session_state["run"] = link["run"]
    odd_k = None
    if "k" not in st.session_state and "k" in link:
        if LINK_K.fullmatch(link["k"]):
            st.session_state["k"] = min(100, max(1, int(link["k"])))
        else:  # e.g. ?k=² (a digit to str.isdigit, not to int) or 5,000 digits (beyond int's limit)
            odd_k = link["k"]
    if st.session_state.get("select_run") in names:  # a page asked for a run (e.g. one it just launched)
        st.session_state["run"] = st.session_state.pop("select_run")
    if st.session_state.get("run") not in names:  # first visit, or the selected run was deleted
        st.session_state["run"] = names[0] if names else None
    with st.sidebar:
        st.markdown("### IWSI dashboard")
        if names:
            st.selectbox("Run", names, key="run", help="run directories under cache/runs, newest first")
        else:
            st.caption(f"No runs in `{runs_dir()}` yet.")
        if "k" not in st.session_state:
            run = selected_run()
            st.session_state["k"] = run_k_or_default(metrics(run) if run else {})
        if odd_k is not None:
            st.warning(f"The link's k ({md_text(odd_k[:12])}{'…' if len(odd_k) > 12 else ''}) is not a whole number "
                       f"from 1 to 100: showing k = {st.session_state['k']}.", icon=":material/warning:")
        st.slider("k — % of majority samples kept", 1, 100, key="k",
                  help="the selected run's method keeps its k % of D_c; shared by every page")
    state = link_state()
    if dict(st.query_params) != state:
        st.query_params.from_dict(state)


def link_state() -> dict[str, str]:
    """The sidebar's run and k as the URL carries them (?run=NAME&k=K): a shared link or a reload shows the same."""
    run = st.session_state.get("run")
    return {"k": str(st.session_state["k"])} | ({"run": run} if run else {})


def run_k_or_default(metrics: dict) -> int:
    """The k a run was made with (metrics.json) as the slider's start, or DEFAULT_K when the file holds no usable k."""
    k = finite(metrics.get("k"))
    return int(round(k)) if k is not None and 1 <= k <= 100 else int(DEFAULT_K)


def selected_run() -> Path | None:
    name = st.session_state.get("run")
    try:
        return run_path(name) if name else None
    except RunNameError:  # e.g. a name from an older session that is no longer a plain run folder
        return None


def selected_k() -> float:
    return float(st.session_state.get("k", DEFAULT_K))


def header(title: str, explanation: str, run_banner: bool = True) -> None:
    """Page title + one line saying what the page shows + the selected run's method (`run_banner`: pages that
    do not read the selected run, such as Probe and Ablations, leave it out)."""
    st.title(title)
    st.caption(explanation)
    run = selected_run()
    if run_banner and run is not None and (run / RUN_FILE.config).exists():
        method, _, run_k, _ = run_method(run)
        uses_k = filtering.METHODS[method].uses_k
        k_text = f"k = {run_k:g}" if uses_k and run_k is not None else "k not used"
        kept = "this method's set at the sidebar k" if uses_k else "this method's set (the same at every k)"
        st.markdown(f"Run **{run.name}** · trained with **{filtering.METHODS[method].label}** ({k_text}): "
                    f"*kept* on every page is {kept}.")


def require_samples(scored: bool = True) -> tuple[Path, pd.DataFrame]:
    """The selected run and its samples (numeric columns), or an empty state and stop. With `scored=False`
    a run past the vote is enough (its losses and DS weights may still be missing)."""
    run = selected_run()
    if run is None:
        st.info(EMPTY_HINT, icon=":material/info:")
        st.stop()
    samples = table(run, RUN_FILE.samples, NUMERIC)
    if samples is None:
        st.info(f"Run **{run.name}** has no `samples.parquet` yet: it is written by the "
                f"**{WRITTEN_BY[RUN_FILE.samples]}** stages. Follow its progress on the Runs page.",
                icon=":material/hourglass_top:")
        st.stop()
    if scored and not set(NUMERIC) <= set(samples.columns):
        absent = ", ".join(c for c in NUMERIC if c not in samples.columns)
        state = run_state(run)
        if state.get("state") == "running":  # still on its way: nothing to resume
            then = (f"The run is at the **{md_text(state.get('stage'))}** stage now; this page fills in once score "
                    "has finished (progress on the Runs page).")
        else:
            then = f"A run stopped with `--until vote` resumes with `iwsi run --out {run}`."
        st.info(f"Run **{run.name}** has no DS weights yet (`samples.parquet` lacks {absent}): they are "
                f"written by the **score** stage. {then}", icon=":material/hourglass_top:")
        st.stop()
    return run, samples


def missing(run: Path, name: str) -> None:
    st.info(f"`{name}` is missing in run **{run.name}**: it is written by the **{WRITTEN_BY.get(name, 'pipeline')}** "
            f"stage{' (enable `embed=true`)' if name in (RUN_FILE.umap, RUN_FILE.suggestions) else ''}.",
            icon=":material/info:")


def pick_ablation(key: str = "ablation") -> tuple[str, pd.DataFrame]:
    """An ablation chosen by the user (newest first) and its results table, or a message and stop."""
    found = list_ablations()
    if not found:
        st.info("No ablation results yet: run `iwsi ablate` (it writes `cache/ablations/<name>/results.parquet` "
                "and results.md/.csv/.tex).", icon=":material/info:")
        st.stop()
    name = st.selectbox("Ablation", found, key=key)
    path = ablations_dir() / name / "results.parquet"
    try:
        return name, _read_parquet(str(path), mtime(path), None)
    except (OSError, ValueError) as err:  # a damaged table: say so, keep the page (and the others) working
        st.error(f"`results.parquet` of ablation **{name}** cannot be read ({type(err).__name__}); rerun the same "
                 "`iwsi ablate` command to rebuild it.", icon=":material/error:")
        st.stop()


EXPLORER_HANDOFF = "explorer_samples"  # session key: samples a chart selection hands to the Samples explorer


def open_in_explorer(run: Path, picked: pd.DataFrame, what: str) -> None:
    """Show `picked` (rows with question_id, sample_id) in the Samples explorer, filtered to them."""
    st.session_state[EXPLORER_HANDOFF] = {"run": run.name, "what": what,
                                          "keys": list(zip(picked["question_id"], picked["sample_id"]))}
    # switch_page clears the URL's query and, being no click in the browser, sends no widget values: the new
    # page's first run drops the sidebar's run and k as stale widgets, and the sidebar would fall back to the
    # newest run at its own k. Carried in the URL, they come back as on a reload.
    st.switch_page("views/explorer.py", query_params=link_state())


def outputs_side_by_side(pairs: pd.DataFrame, labels: tuple[str, str], key: str) -> None:
    """Two models' test answers side by side (iwsi.present.side_by_side): the first one's wins, losses and ties
    against the second, and the questions, filtered by outcome and by text."""
    a, b = labels
    counts = pairs["outcome"].value_counts().reindex(OUTCOMES, fill_value=0)
    cols = st.columns(4)
    cols[0].metric(f"{a} wins", f"{counts['win']:,}", help=f"{a} right, {b} wrong")
    cols[1].metric(f"{a} loses", f"{counts['loss']:,}", help=f"{a} wrong, {b} right")
    cols[2].metric("ties: both right", f"{counts['tie: both right']:,}")
    cols[3].metric("ties: both wrong", f"{counts['tie: both wrong']:,}")
    n, net = len(pairs), int(counts["win"] - counts["loss"])
    if n:
        st.caption(f"Over the {n:,} test questions both answered: wins − losses = {net:+,}, i.e. {100 * net / n:+.1f} "
                   f"points of accuracy for {a} (an unparsed answer counts as wrong, as in the accuracy).")
    c1, c2 = st.columns([1, 2])
    outcome = c1.selectbox("Show", ["all", *OUTCOMES], key=f"{key}_outcome")
    needle = c2.text_input("Search answers and outputs", key=f"{key}_search", placeholder="words, numbers or an id")
    shown = pairs if outcome == "all" else pairs[pairs["outcome"].eq(outcome)]
    if needle:
        text = shown.drop(columns="outcome").astype(str)
        shown = shown[text.apply(lambda col: col.str.contains(needle, case=False, regex=False)).any(axis=1)]
    st.caption(f"{len(shown):,} of {n:,} questions.")
    st.dataframe(shown, hide_index=True, key=f"{key}_table",
                 column_config={f"output {a}": st.column_config.TextColumn(width="large"),
                                f"output {b}": st.column_config.TextColumn(width="large")})
