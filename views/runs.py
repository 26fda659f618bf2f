"""Runs: every run with its status and accuracy, launch a new run, follow and cancel it."""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from iwsi.compare import paired_accuracy
from iwsi.filtering import METHODS
from iwsi.present import run_bundle
from iwsi.runs import (
    PRESETS,
    RunNameError,
    cancel_run,
    check_launch,
    describe_run,
    finite,
    launch_run,
    list_run_names,
    log_tail,
    read_progress,
    run_path,
    run_state,
)
from views._shared import NUMERIC, has_columns, header, md_text, metrics, selected_k, selected_run, table

header("Runs", "Every run under cache/runs with its dataset, model, filter method, k, status and accuracy. "
               "Launch the embedded demo or the paper preset; progress updates live.")


def start(name: str, preset: str | None, sets: list[str], config=None) -> None:
    config = config or PRESETS[preset]
    if not config.exists():
        st.error(f"Preset file `{config}` not found: it ships with the pipeline (`configs/`).")
        return
    problems = check_launch(name, config, sets)  # the whole form, before anything is written
    if problems:
        st.error("Not started:\n" + "\n".join(f"- {md_text(p)}" for p in problems))  # they can quote the data
        return
    try:
        pid = launch_run(name, config, sets)
    except (RunNameError, ValueError, OSError) as err:
        st.error(md_text(err))
        return
    st.session_state["select_run"] = name  # the sidebar selects it on the rerun (its widget is drawn already)
    st.toast(f"Started run {name} (pid {pid})")
    st.rerun()


def launch_form() -> None:
    with st.form("launch"):
        st.markdown("**Launch a run** — `iwsi run --config PRESET --out cache/runs/NAME --set …` in the background")
        c1, c2, c3, c4 = st.columns([2, 3, 1, 1])
        preset = c1.selectbox("Preset", list(PRESETS),
                              help="embedded demo: configs/demo.yaml · paper: configs/paper.yaml")
        # the default name is fixed once per session: a default that changes on every rerun resets the field
        st.session_state.setdefault("launch_name", f"run-{datetime.now():%Y%m%d-%H%M%S}")
        name = c2.text_input("Run name", key="launch_name", help="letters, digits, . _ - (≤ 80)")
        k = c3.number_input("k (%)", 1, 100, 80)
        seed = c4.number_input("seed", 0, 10_000, 0)
        extra = st.text_input("More overrides (KEY=VALUE, space separated)",
                              placeholder="num_questions=200 num_samples=8")
        if st.form_submit_button("Launch", type="primary", icon=":material/rocket_launch:"):
            start(name.strip(), preset, [f"k={k}", f"seed={seed}", *extra.split()])


def k_text(row: dict) -> str:
    """The run's k, or "–" where its method uses none (LMSI keeps all of D_c whatever k says)."""
    method = METHODS.get(row["method"])
    if row["k"] is None or (method is not None and not method.uses_k):
        return "–"
    return f"{row['k']:g}"


def runs_table(names: list[str]) -> None:
    rows = [describe_run(n) for n in names]
    df = pd.DataFrame([{**row, "k": k_text(row)} for row in rows])
    st.dataframe(df, hide_index=True, column_config={
        "accuracy base": st.column_config.NumberColumn(format="%.3f"),
        "accuracy trained": st.column_config.NumberColumn(format="%.3f")})


def progress_view(name: str) -> None:
    """Per-stage progress bars, cancel button, and the log tail when the run failed."""
    run = run_path(name)
    state = run_state(run)
    st.markdown(f"**{name}** — state: **{md_text(state.get('state'))}**, stage: **{md_text(state.get('stage'))}**")
    for stage, rec in read_progress(run).items():
        total, done = rec.get("total") or 0, rec.get("done") or 0
        frac = min(1.0, done / total) if total else 0.0
        elapsed = rec.get("elapsed") or 0.0
        # the stage's average rate so far (steadier than the last interval); no ETA once the run stopped
        live = state.get("state") == "running"
        eta = f" · ~{elapsed * (total - done) / done:.0f} s left" if live and 0 < done < total else ""
        st.progress(frac, text=f"{md_text(stage)}: {done:,}/{total:,} · {elapsed:.1f} s{eta}")
    if state.get("state") == "running":
        if st.button("Cancel run", icon=":material/cancel:"):
            st.toast("SIGTERM sent" if cancel_run(name) else "run is not running")
    elif state.get("state") in ("failed", "cancelled", "stopped"):
        if state.get("error"):
            st.error(md_text(state["error"]))  # an exception's message can quote the data or the model's output
        if st.button("Resume", icon=":material/replay:", help="rerun with the run's own config.yaml: finished "
                     "stages and chunks are kept"):
            start(name, None, [], config=run / "config.yaml")
        st.code(log_tail(run) or "(log.txt is empty)", language="text")
    if state.get("state") != st.session_state.setdefault(f"last_state_{name}", state.get("state")):
        st.session_state[f"last_state_{name}"] = state.get("state")
        st.rerun(scope="app")  # the run finished: refresh the table and the other pages' data


def accuracy_change(run) -> str | None:
    """Trained − base accuracy with its n and paired 95 % interval: one question of 40 is not a finding."""
    ev = table(run, "eval.parquet", stop_if_broken=False)
    if ev is None or not {"base", "trained"} <= set(ev["model"]):
        return None
    r = paired_accuracy(ev, ev, "trained", "base")
    verdict = "the interval excludes 0" if r["lo"] > 0 or r["hi"] < 0 else "not distinguishable from 0 at this n"
    return (f"Trained − base: {100 * r['delta']:+.1f} points over n = {r['n']} test questions, paired 95 % bootstrap "
            f"interval [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}], p = {r['p']:.2f} — {verdict}.")


names = list_run_names()
if not names:
    st.info("No runs yet. One click runs the embedded demo (SmolLM2-135M on a small synthetic "
            "arithmetic set, a few minutes on CPU); or run `make run` in a terminal.", icon=":material/info:")
    if st.button("Run embedded demo", type="primary", icon=":material/play_arrow:"):
        start("demo", "embedded demo", [])
else:
    runs_table(names)

launch_form()

run = selected_run()
if run is not None:
    st.subheader("Selected run")
    m = metrics(run)
    if m:
        cols = st.columns(5)
        acc = m.get("accuracy") if isinstance(m.get("accuracy"), dict) else {}
        count = {key: finite(m.get(key)) for key in ("num_candidates", "num_majority", "num_kept")}
        count = {key: "—" if n is None else f"{int(n):,}" for key, n in count.items()}  # a damaged metrics.json
        accuracy = {key: finite(acc.get(key)) for key in ("base", "trained")}
        cols[0].metric("candidates", count["num_candidates"])
        cols[1].metric("majority (D_c)", count["num_majority"])
        cols[2].metric("kept", count["num_kept"])
        cols[3].metric("accuracy base", "—" if accuracy["base"] is None else f"{accuracy['base']:.3f}")
        cols[4].metric("accuracy trained", "—" if accuracy["trained"] is None else f"{accuracy['trained']:.3f}")
        change = accuracy_change(run)
        if change:
            st.caption(change)
    if has_columns(run / "samples.parquet", NUMERIC):
        k = selected_k()
        # built only on click (on the download thread: it reads the files itself, no st caches)
        st.download_button(f"Figures & tables for the paper (zip, k = {k:g})", lambda: run_bundle(run, k),
                           file_name=f"iwsi-{run.name}-k{k:g}-figures.zip", mime="application/zip",
                           icon=":material/download:", help=f"every chart of the run's pages and its summary table, "
                           f"all at the sidebar's k = {k:g} (iwsi-{run.name}-k{k:g}-ds_weights.pdf, …; SVG and PDF, "
                           "Markdown and LaTeX); the accuracy is the model the run trained")
    running = run_state(run).get("state") == "running"
    st.fragment(progress_view, run_every=2 if running else None)(run.name)
