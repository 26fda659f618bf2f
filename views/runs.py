"""Runs: every run with its status, accuracy and tags, launch a new run, follow and cancel it; tag, note,
archive or delete a run.

While a run is live, the runs table and the selected run's section are fragments that rerun every POLL_S
seconds and read the run directories again (the counts after vote and score, the base accuracy after
evaluate-base, the stage, the training loss per step); with no live run nothing polls."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from iwsi import charts
from iwsi.compare import paired_accuracy
from iwsi.config import DEFAULT_K
from iwsi.contract import RUN_FILE
from iwsi.filtering import METHODS
from iwsi.present import run_bundle, side_by_side
from iwsi.runs import (
    NOTE_MAX,
    PRESETS,
    STAGES,
    STARTING,
    Annotations,
    RunNameError,
    bar_stage,
    base_accuracy,
    bench_stage_seconds,
    cancel_run,
    check_launch,
    delete_run,
    describe_run,
    duration,
    epoch,
    estimate_left,
    filter_runs,
    finite,
    launch_run,
    list_run_names,
    log_tail,
    parse_tags,
    progress_history,
    read_annotations,
    read_bench_run,
    read_train_log,
    rough_duration,
    run_path,
    run_state,
    save_annotations,
    speed_scale,
    stage_eta,
    stage_seconds,
)
from views._shared import (
    NUMERIC,
    cached_figure,
    has_columns,
    header,
    md_text,
    metrics,
    outputs_side_by_side,
    selected_k,
    selected_run,
    table,
)

POLL_S = 2  # seconds between two reads of a live run's files
LIVE = "runs_live"  # session key: the runs that were live when the page last ran in full

header("Runs", "Every run under cache/runs with its dataset, model, filter method, k, status and accuracy. "
               "Launch the embedded demo or the paper preset; a live run's stage, counts and progress update "
               "by themselves.")


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


def demo_time() -> str | None:
    """How long the embedded demo took where it was measured (docs/results/bench-run.json, `iwsi bench run`), in
    words; None without that file: the page promises no time that nobody measured."""
    bench = read_bench_run()
    if bench is None:
        return None
    total = bench["total_s"]
    cpu = bench.get("cpu") if isinstance(bench.get("cpu"), dict) else {}
    cores = finite(cpu.get("cores"))
    where = md_text(cpu.get("model_name") or "an unnamed CPU") + (f", {int(cores)} cores" if cores else "")
    when = f", {md_text(str(bench['started_utc'])[:10])}" if bench.get("started_utc") else ""
    return f"the embedded demo took {duration(total)} on {where} (`iwsi bench run`{when})"


def launch_form() -> None:
    with st.form("launch"):
        st.markdown("**Launch a run** — `iwsi run --config PRESET --out cache/runs/NAME --set …` in the background")
        measured = demo_time()
        if measured:
            st.caption(f"For scale: {measured}.")
        c1, c2, c3, c4 = st.columns([2, 3, 1, 1])
        preset = c1.selectbox("Preset", list(PRESETS),
                              help="embedded demo: configs/demo.yaml · paper: configs/paper.yaml")
        # the default name is fixed once per session: a default that changes on every rerun resets the field
        st.session_state.setdefault("launch_name", f"run-{datetime.now():%Y%m%d-%H%M%S}")
        name = c2.text_input("Run name", key="launch_name", help="letters, digits, . _ - (≤ 80)")
        k = c3.number_input("k (%)", 1, 100, int(DEFAULT_K))
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


def live_runs(names: list[str]) -> list[str]:
    return [n for n in names if run_state(run_path(n)).get("state") == "running"]


def runs_table(names: list[str], tags: list[str], show_archived: bool) -> None:
    """The table of the runs the filters let through (a fragment: redrawn from the files every POLL_S s while a
    run is live)."""
    rows = [describe_run(n) for n in names]
    shown = filter_runs(rows, tags, show_archived)
    hidden = sum(row["archived"] for row in rows) if not show_archived else 0
    if len(shown) < len(rows):
        st.caption(f"{len(shown)} of {len(rows)} runs shown" + (f" ({hidden} archived hidden)" if hidden else "")
                   + ".")
    if shown:
        df = pd.DataFrame([{**row, "k": k_text(row)} for row in shown])
        st.dataframe(df if show_archived else df.drop(columns="archived"), hide_index=True, column_config={
            "accuracy base": st.column_config.NumberColumn(format="%.3f"),
            "accuracy trained": st.column_config.NumberColumn(format="%.3f"),
            "tags": st.column_config.ListColumn(), "note": st.column_config.TextColumn(width="medium")})
    else:
        st.info("No run matches the filters: clear the tag filter or show archived runs.", icon=":material/filter_alt:")
    live = [row["run"] for row in rows if row["status"] == "running"]
    # A run started or ended, or a new run folder appeared: run the page in full, so the sidebar, the other
    # pages' data and the polling (on only while a run is live) follow.
    if live != st.session_state.get(LIVE) or set(list_run_names()) != set(names):
        st.session_state[LIVE] = live
        st.rerun(scope="app")


def readout(run: Path) -> None:
    """The run's counts and accuracies as its files hold them now (metrics.json is rebuilt after every stage; the
    base accuracy is read from eval_base.parquet before metrics.json has it)."""
    m = metrics(run)
    base = base_accuracy(run, m)
    if not m and base is None:
        return
    cols = st.columns(5)
    acc = m.get("accuracy") if isinstance(m.get("accuracy"), dict) else {}
    count = {key: finite(m.get(key)) for key in ("num_candidates", "num_majority", "num_kept")}
    count = {key: "—" if n is None else f"{int(n):,}" for key, n in count.items()}  # not yet, or a damaged file
    trained = finite(acc.get("trained"))
    cols[0].metric("candidates", count["num_candidates"])
    cols[1].metric("majority (D_c)", count["num_majority"])
    cols[2].metric("kept", count["num_kept"])
    cols[3].metric("accuracy base", "—" if base is None else f"{base:.3f}")
    cols[4].metric("accuracy trained", "—" if trained is None else f"{trained:.3f}")
    change = accuracy_change(run)
    if change:
        st.caption(change)


def accuracy_change(run) -> str | None:
    """Trained − base accuracy with its n and paired 95 % interval: one question of 40 is not a finding."""
    ev = table(run, RUN_FILE.eval, stop_if_broken=False)
    if ev is None or not {"base", "trained"} <= set(ev["model"]):
        return None
    r = paired_accuracy(ev, ev, "trained", "base")
    verdict = "the interval excludes 0" if r["lo"] > 0 or r["hi"] < 0 else "not distinguishable from 0 at this n"
    return (f"Trained − base: {100 * r['delta']:+.1f} points over n = {r['n']} test questions, paired 95 % bootstrap "
            f"interval [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}], p = {r['p']:.2f} — {verdict}.")


def since(stamp, now: float) -> float:
    """Seconds from an ISO time in a run's file to `now` (0 when the file holds no time)."""
    return max(now - (epoch(stamp) or now), 0.0)


def stages_view(run: Path, state: dict, now: float) -> None:
    """The whole run: every stage in run order, done (its marker, with the seconds it took), running, or still to
    come, and the time left as an estimate from the measured demo scaled by this run's own pace."""
    done = stage_seconds(run)
    live = state.get("state") == "running"
    if not done and not live:  # not begun, or made before stage markers existed
        return
    current = state.get("stage") if state.get("stage") in STAGES else None
    bench = bench_stage_seconds(read_bench_run())
    scale = speed_scale(done, bench)
    elapsed = since(state.get("updated"), now) if live and current else 0.0  # status.json is written as a stage starts
    rows = []
    for stage in STAGES:
        if stage in done:
            rows.append((stage, "done", "—" if done[stage] is None else duration(done[stage])))
        elif live and stage == current:
            rows.append((stage, "running", f"{duration(elapsed)} so far"))
        elif live:
            known = scale is not None and stage in bench
            rows.append((stage, "to come", f"≈ {rough_duration(scale * bench[stage])} (estimate)" if known else ""))
        else:
            rows.append((stage, str(state.get("state")) if stage == current else "not run", ""))
    st.dataframe(pd.DataFrame(rows, columns=["stage", "state", "time"]), hide_index=True)
    line = f"Whole run: {len(done)} of {len(STAGES)} stages done"
    if live:
        todo = [s for s in STAGES if s not in done]
        left = estimate_left(done, bench, todo, elapsed if todo[:1] == [current] else 0.0) if todo else None
        if left is not None:
            line += (f" · ≈ {rough_duration(left)} left, an estimate: the embedded demo's stage times (`iwsi bench "
                     f"run`) × {scale:.2g}, this run's finished stages against the demo's")
        elif not bench:
            line += " · no estimate of the time left without a measured demo (docs/results/bench-run.json)"
        else:
            line += " · an estimate of the time left comes once a stage has finished"
    st.caption(line + ".")


def progress_view(run: Path, state: dict, now: float) -> None:
    """Per-bar progress of the stages; a live bar counts its time up to now and gives the time left as an
    estimate; what happens before a stage's first item is said, not shown as a frozen 0."""
    live = state.get("state") == "running"
    stage = state.get("stage")
    if live and stage == STARTING:
        st.info(f"Starting ({duration(since(state.get('started'), now))} so far): the pipeline imports its libraries "
                "and checks the config, the data, the model and the run folder before it writes anything, then "
                "begins its first stage still to do.", icon=":material/hourglass_top:")
    waiting = live and stage in STAGES
    for bar, records in progress_history(run).items():
        rec = records[-1]
        total, done = rec["total"], rec["done"]
        frac = min(1.0, done / total) if total else 0.0
        ticking = live and bar_stage(bar) == stage and done < total
        elapsed = rec["elapsed"] + (since(rec.get("time"), now) if ticking else 0.0)  # time since its last record too
        text = f"{md_text(bar)}: {done:,}/{total:,} · {duration(elapsed)}"
        if ticking and done == 0:
            text += " · no item finished yet"
        elif ticking and (eta := stage_eta(records, now)) is not None:
            text += f" · ≈ {rough_duration(eta)} left (estimate)"
        waiting = waiting and not (bar_stage(bar) == stage and done > 0)
        st.progress(frac, text=text)
    if waiting:
        st.caption(f"**{md_text(stage)}** has run for {duration(since(state.get('updated'), now))}; no item counted "
                   "yet: a stage that needs a model loads it first (the run's first such stage, and train and "
                   "evaluate, which load their own), and items are counted as each batch finishes.")


def train_curve(run: Path, state: dict) -> None:
    """The train stage's loss per optimizer step as it trains (train_log.jsonl, read again on every poll of a live
    run) and once it has finished."""
    log = read_train_log(run)
    if log.empty:
        if state.get("state") == "running" and state.get("stage") == "train":
            st.caption("The training loss curve appears here with the first optimizer step.")
        return
    st.plotly_chart(cached_figure(charts.training_loss, log), key="train_loss")
    last = log.iloc[-1]
    at_epoch = f" (epoch {last['epoch']:.2f})" if pd.notna(last["epoch"]) else ""
    st.caption(f"{len(log):,} optimizer steps logged; the last, step {int(last['step']):,}{at_epoch}: loss "
               f"{last['loss']:.4f}. The same scalars go to TensorBoard, W&B or MLflow with `report_to`.")


def controls(run: Path, state: dict) -> None:
    """Cancel a live run; say why a run ended early, resume it, show its log."""
    if state.get("state") == "running":
        if st.button("Cancel run", icon=":material/cancel:"):
            st.toast("SIGTERM sent" if cancel_run(run.name) else "run is not running")
    elif state.get("state") in ("failed", "cancelled", "stopped"):
        if state.get("error"):  # an exception's message can quote the data or the model's output
            (st.error if state["state"] == "failed" else st.warning)(md_text(state["error"]))
        if st.button("Resume", icon=":material/replay:", help="rerun with the run's own config.yaml: finished "
                     "stages and chunks are kept"):
            start(run.name, None, [], config=run / RUN_FILE.config)
        log = log_tail(run)
        if log or state["state"] == "failed":
            st.code(log or "(log.txt is empty)", language="text")


def selected_view(name: str) -> None:
    """The selected run (a fragment: redrawn from its files every POLL_S s while it is live)."""
    run = run_path(name)
    state = run_state(run)
    now = time.time()
    st.markdown(f"**{name}** — state: **{md_text(state.get('state'))}**, stage: **{md_text(state.get('stage'))}**")
    readout(run)
    stages_view(run, state, now)
    progress_view(run, state, now)
    train_curve(run, state)
    controls(run, state)


def notes_form(run: Path, notes: Annotations) -> None:
    """Tags and a note for the selected run, in annotations.json: outside config.yaml, so the run's hash and
    fingerprints stay as they are."""
    with st.form(f"notes_{run.name}"):
        tags = st.text_input("Tags (comma separated)", ", ".join(notes.tags), key=f"tags_{run.name}",
                             placeholder="baseline, k-sweep", help="letters, digits, . _ + - (≤ 40 per tag)")
        note = st.text_area("Note", notes.note, key=f"note_{run.name}", max_chars=NOTE_MAX)
        if st.form_submit_button("Save tags and note", icon=":material/sell:"):
            try:
                save_annotations(run, replace(notes, tags=parse_tags(tags), note=note))
            except (ValueError, OSError) as err:  # a bad tag, or a folder iwsi may not write into
                st.error(md_text(err))
                return
            st.toast(f"Saved the tags and note of {run.name}")
            st.rerun(scope="app")


def archive_and_delete(run: Path, notes: Annotations) -> None:
    """Archive (hide from the table, reversible) or delete (the folder, after the name is typed) the selected run."""
    if st.button("Unarchive" if notes.archived else "Archive", key="archive", icon=":material/archive:",
                 help="archived runs are hidden from the table unless 'Show archived runs' is on"):
        try:
            save_annotations(run, replace(notes, archived=not notes.archived))
        except (ValueError, OSError) as err:
            st.error(md_text(err))
            return
        st.rerun(scope="app")
    confirm = st.text_input("Type the run's name to delete its folder", key=f"delete_{run.name}",
                            placeholder=run.name, help="every file of the run goes; a running run is refused")
    if st.button("Delete run", key="delete", type="primary", icon=":material/delete_forever:"):
        try:
            delete_run(run.name, confirm.strip())
        except (ValueError, OSError) as err:  # RunNameError is a ValueError: one line saying why
            st.error(md_text(err))
            return
        st.toast(f"Deleted run {run.name} and its folder")
        st.rerun(scope="app")


names = list_run_names()
live = live_runs(names)
st.session_state[LIVE] = live
if not names:
    measured = demo_time()
    st.info("No runs yet. One click runs the embedded demo (SmolLM2-135M on a small synthetic arithmetic set"
            + (f"; {measured}" if measured else "") + "); or run `make run` in a terminal.", icon=":material/info:")
    if st.button("Run embedded demo", type="primary", icon=":material/play_arrow:"):
        start("demo", "embedded demo", [])
else:
    c1, c2 = st.columns([1, 3])
    show_archived = c1.toggle("Show archived runs", key="runs_show_archived")
    every_tag = sorted({tag for n in names for tag in read_annotations(run_path(n)).tags})
    # a tag no run carries any more leaves the filter (a widget value outside its options is refused)
    st.session_state["runs_tags"] = [t for t in st.session_state.get("runs_tags", []) if t in every_tag]
    tags = c2.multiselect("Filter by tag", every_tag, key="runs_tags", placeholder="any tag",
                          help="runs carrying any of these tags") if every_tag else []
    st.fragment(runs_table, run_every=POLL_S if live else None)(names, tags, show_archived)

launch_form()

run = selected_run()
if run is not None:
    st.subheader("Selected run")
    st.fragment(selected_view, run_every=POLL_S if run.name in live else None)(run.name)
    with st.expander("Tags, note, archive or delete"):
        notes = read_annotations(run)
        notes_form(run, notes)
        archive_and_delete(run, notes)
    # outside the polled fragment: a download offered anew every POLL_S s could be clicked as it is replaced
    if has_columns(run / RUN_FILE.samples, NUMERIC):
        k = selected_k()
        # built only on click (on the download thread: it reads the files itself, no st caches)
        st.download_button(f"Figures & tables for the paper (zip, k = {k:g})", lambda: run_bundle(run, k),
                           file_name=f"iwsi-{run.name}-k{k:g}-figures.zip", mime="application/zip",
                           icon=":material/download:", help=f"every chart of the run's pages and its summary table, "
                           f"all at the sidebar's k = {k:g} (iwsi-{run.name}-k{k:g}-ds_weights.pdf, …; SVG and PDF, "
                           "Markdown and LaTeX); the accuracy is the model the run trained")
    ev = table(run, RUN_FILE.eval, stop_if_broken=False)
    if ev is not None and {"model", "question_id", "is_correct"} <= set(ev.columns) and \
            {"base", "trained"} <= set(ev["model"]):
        st.subheader("Base vs trained, per test question")
        outputs_side_by_side(side_by_side(ev, "trained", ev, "base", ("trained", "base")), ("trained", "base"),
                             "run_outputs")
