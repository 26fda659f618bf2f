"""A shared link or a damaged file never breaks a page.

Every page opens with odd `?k=` values in the URL and with run files that hold odd values (metrics.json
`k: null` / `NaN`, progress.jsonl lines that are JSON but not objects, a list where config.yaml expects a
method name, status.json fields of the wrong type): the page falls back to defaults and says so where it
matters, and raises nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from iwsi.probe import make_probe_dir

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["views/runs.py", "views/ds_weights.py", "views/percentiles.py", "views/correctness.py",
         "views/distributions.py", "views/rationales.py", "views/explorer.py", "views/queue.py", "views/compare.py",
         "views/ablations.py", "views/probe.py"]
LINKS = {"superscript-two": "²", "5000-digits": "9" * 5000, "negative": "-3", "exponent": "1e9", "zero": "0"}


def _edit_yaml(run: Path, **values) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, **values}))


def _edit_json(run: Path, name: str, **values) -> None:
    data = json.loads((run / name).read_text())
    (run / name).write_text(json.dumps({**data, **values}))


DAMAGE = {
    "metrics-k-null": lambda run: _edit_json(run, "metrics.json", k=None),
    "metrics-k-nan": lambda run: _edit_json(run, "metrics.json", k=float("nan"), sigma_k=float("inf"),
                                            accuracy=[0.1], num_candidates=None, num_kept="many"),
    "progress-not-objects": lambda run: (run / "progress.jsonl").write_text(
        '[1, 2]\n3\n"text"\nnull\n{"stage": ["a"], "done": 1}\n{"stage": "score", "done": "x", "total": null, '
        '"elapsed": "y"}\n{"stage": "vote", "done": 5, "total": 1e999}\n'),
    "config-method-list": lambda run: _edit_yaml(run, method=["iwsi", "lmsi"]),
    "config-odd-types": lambda run: _edit_yaml(run, method="entropy", entropy_threshold="high", dataset=["a"],
                                               k="eighty", seed="one", model={"name": 1}),
    "status-odd-types": lambda run: (run / "status.json").write_text(json.dumps(
        {"state": "running", "pid": "123", "stage": ["x"], "error": {"a": 1}, "updated": [1]})),
}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    make_run_dir(tmp_path / "runs" / "good", num_questions=12, num_samples=3, seed=1)
    make_ablation_dir(tmp_path / "ablations" / "abl")
    make_probe_dir(tmp_path / "probes" / "probe", n=8)
    return tmp_path


def open_page(page: str, k: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if k is not None:
        at.query_params["k"] = k
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# The link is read once, by the shared sidebar: every odd value on one page, one odd value on every page.
LINK_CASES = [("views/ds_weights.py", link) for link in LINKS] + [(page, "5000-digits") for page in PAGES
                                                                  if page != "views/ds_weights.py"]


@pytest.mark.parametrize("page,link", LINK_CASES)
def test_an_odd_k_in_the_link_falls_back(cache, page, link):
    at = open_page(page, LINKS[link])
    k = at.session_state["k"]
    assert isinstance(k, int) and 1 <= k <= 100
    if link in ("superscript-two", "5000-digits", "exponent"):  # not a whole number: the run's k, and one warning
        assert k == 80 and len(at.sidebar.warning) == 1 and "k" in at.sidebar.warning[0].value
    at.sidebar.slider[0].set_value(55).run()  # the page goes on working and the URL is rewritten
    assert not at.exception and at.query_params["k"] in (["55"], "55")


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("page", PAGES)
def test_a_run_file_with_odd_values_breaks_no_page(cache, page, damage):
    bad = make_run_dir(cache / "runs" / "zz-odd", num_questions=12, num_samples=3, seed=2)
    DAMAGE[damage](bad)
    import os

    os.utime(bad / "config.yaml", (2e9, 2e9))  # the newest run: the sidebar selects it
    at = open_page(page)
    assert at.sidebar.selectbox[0].value == "zz-odd"
    assert 1 <= at.session_state["k"] <= 100


@pytest.mark.parametrize("content", ["[1, 2]", "3", "not json"])
def test_a_probe_json_that_is_not_an_object_breaks_no_page(cache, content):
    (cache / "probes" / "probe" / "probe.json").write_text(content)
    at = open_page("views/probe.py")
    assert at.get("plotly_chart") and not at.error  # the tables and charts, without the manifest's details
