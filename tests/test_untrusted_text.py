"""Dataset text and model output are shown as text, never rendered as markdown.

A question, rationale, answer or suggestion reason holding `![x](http://host/p.png)` must not make the
researcher's browser fetch that URL, nor draw a link, HTML, a colour directive or LaTeX. The pages show
such text escaped (views/_shared.py: md_text) or in st.text / st.code / a table. The browser check that no
request leaves the page is in tests/test_browser.py (test_hostile_text_fetches_nothing)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.fixtures import make_run_dir
from iwsi.probe import make_probe_dir
from tests.pages import open_page

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["views/runs.py", "views/ds_weights.py", "views/percentiles.py", "views/correctness.py",
         "views/distributions.py", "views/rationales.py", "views/explorer.py", "views/queue.py", "views/compare.py",
         "views/ablations.py", "views/probe.py"]
# Elements whose text is never parsed as markdown (plotly draws its own text; tables and st.text are literal).
LITERAL = {"text", "code", "arrow_data_frame", "plotly_chart", "exception"}
ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash-escaped ASCII punctuation character (CommonMark)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)  # literal text too
NOT_SHOWN = {"id", "form_id"}  # proto fields that are identifiers, not text
# What the payload would become if it were parsed: an image, a link, HTML, an autolink, LaTeX, a directive.
FORBIDDEN = ("![", "](", "<", "http:", "www.", "$", ":red[x]")


def payload(port: int = 9) -> str:
    url = f"http://127.0.0.1:{port}"
    return (f"![x]({url}/image.png) <img src=\"{url}/tag.png\"> [link]({url}/link) www.example.com $x^2$ "
            f":red[x] `tick *star* <b>bold</b>")


def make_hostile_run(path: Path, port: int = 9) -> Path:
    """A fixture run whose question ids, questions, rationales, answers, gold answers, suggestion reasons,
    status error, progress stages and model name all carry the payload."""
    bad = payload(port)
    run = make_run_dir(path, num_questions=12, num_samples=3, seed=5)
    qid = {f"q{i:05d}": f"q{i:05d} {bad}" for i in range(12)}
    samples = pd.read_parquet(run / "samples.parquet")
    samples = samples.assign(question_id=samples["question_id"].map(qid), question=samples["question"] + " " + bad,
                             rationale=samples["rationale"] + " " + bad, gold=samples["gold"].fillna("7") + bad,
                             answer=samples["answer"].where(~samples["is_majority"], samples["answer"] + bad),
                             majority_answer=samples["majority_answer"].fillna("7") + bad
                             if "majority_answer" in samples else bad)
    samples.to_parquet(run / "samples.parquet", index=False)
    for name in ("suggestions.parquet", "umap.parquet"):
        df = pd.read_parquet(run / name)
        df["question_id"] = df["question_id"].map(lambda q: qid.get(q, q))
        if "reason" in df:
            df["reason"] = df["reason"] + " " + bad
        df.to_parquet(run / name, index=False)
    (run / "status.json").write_text(json.dumps({"state": "failed", "pid": None, "stage": bad, "error": bad}))
    (run / "progress.jsonl").write_text(json.dumps({"stage": bad, "done": 1, "total": 2, "elapsed": 1.0}) + "\n")
    (run / "log.txt").write_text(bad + "\n")
    config = (run / "config.yaml").read_text().replace("model: embedded", f"model: {json.dumps(bad)}")
    (run / "config.yaml").write_text(config)
    return run


def make_hostile_probe(path: Path, port: int = 9) -> Path:
    """A fixture probe whose questions, rationales, notes, setting names, title, model and command carry the payload."""
    bad = payload(port)
    probe = make_probe_dir(path, n=8)
    variants = pd.read_parquet(probe / "variants.parquet")
    variants = variants.assign(question=variants["question"] + " " + bad, rationale=variants["rationale"] + " " + bad,
                               note=variants["note"].fillna("") + " " + bad)
    variants.to_parquet(probe / "variants.parquet", index=False)
    for name in ("scores.parquet", "auroc.parquet", "cut.parquet"):
        df = pd.read_parquet(probe / name)
        df["setting"] = df["setting"].replace("loss_span=completion", bad)
        df.to_parquet(probe / name, index=False)
    info = json.loads((probe / "probe.json").read_text())
    (probe / "probe.json").write_text(json.dumps({**info, "title": bad, "model": bad, "command": bad}))
    return probe


def strings(message):
    """Every string field of a protobuf message, recursively (labels, bodies, options, help texts)."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for v in values:
                yield from strings(v)
        elif field.type == field.TYPE_STRING and field.name not in NOT_SHOWN:
            yield from values


def markdown_sources(at: AppTest) -> list[str]:
    """The text of every element and container the browser renders as markdown."""
    from views._shared import SHIFT_KEYS  # the pages' own script, no run's text in it

    return [s for node in at._tree if node.type not in LITERAL and getattr(node, "proto", None) is not None
            for s in strings(node.proto) if s != SHIFT_KEYS]


def unescaped(source: str) -> list[str]:
    """The forbidden constructs left in `source` once its backslash-escaped characters are masked."""
    skeleton = CODE_SPAN.sub("\0", ESCAPE.sub("\0", source))
    return [f for f in FORBIDDEN if f in skeleton]


def assert_shown_escaped(at: AppTest, expect_payload: bool = True) -> None:
    assert not at.exception, [e.value for e in at.exception]
    sources = markdown_sources(at)
    problems = {s[:200]: unescaped(s) for s in sources if unescaped(s)}
    assert not problems, problems
    if expect_payload:  # the text is there, escaped: not dropped
        assert any(payload() in ESCAPE.sub(r"\1", s) for s in sources)


# -- the helper ----------------------------------------------------------------------------------------
def test_md_text_escapes_every_markdown_construct():
    from views._shared import md_text

    text = md_text(payload())
    assert not unescaped(text) and ESCAPE.sub(r"\1", text) == payload()
    assert md_text("a\n    b\n# c") == "a  \nb  \n\\# c"  # lines stay lines; no code block, no heading
    assert md_text("\\![x](y)") == "\\\\\\!\\[x\\]\\(y\\)"  # a backslash cannot undo the escape after it
    assert md_text(42) == "42" and md_text("plain words 1 2") == "plain words 1 2"


# -- the pages -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_pages_show_hostile_text_escaped(cache, page):
    make_hostile_run(cache / "runs" / "hostile")
    make_hostile_probe(cache / "probes" / "hostile-probe")
    at = open_page(page)
    assert_shown_escaped(at, expect_payload=page in ("views/runs.py", "views/rationales.py", "views/probe.py"))


def test_rationales_page_shows_a_label_suggestion_reason_escaped(cache):
    make_hostile_run(cache / "runs" / "hostile")
    at = open_page("views/rationales.py")
    assert any("suggested" in s and "\\!\\[x\\]" in s for s in markdown_sources(at))
    [b for b in at.button if b.label == "Next"][0].click().run()
    assert_shown_escaped(at)


def test_explorer_drill_down_shows_the_question_escaped(cache):
    make_hostile_run(cache / "runs" / "hostile")
    at = open_page("views/explorer.py")
    at.session_state["explorer"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert at.subheader and at.subheader[-1].value.startswith("Question q00000")
    assert_shown_escaped(at)


def test_probe_page_shows_settings_and_examples_escaped(cache):
    make_hostile_probe(cache / "probes" / "hostile-probe")
    at = open_page("views/probe.py")
    assert_shown_escaped(at)
    at.radio[0].set_value(payload()).run()  # the hostile setting: shown escaped, still selected by its own value
    assert_shown_escaped(at)
    assert any("clean original" in s for s in markdown_sources(at))
