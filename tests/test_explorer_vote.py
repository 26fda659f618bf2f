"""The Samples explorer on the vote's rule: it opens as soon as the vote is done (before score), and a
question's drill-down says whether its majority answer was a tie, a plurality, or none at all under the
run's min_agreement."""
from __future__ import annotations

import pandas as pd
import yaml

from benchmarks.fixtures import make_run_dir
from iwsi.vote import vote_table
from tests.pages import open_page

ANSWERS = {"tie": ["9", "4", "4", "9"], "weak": ["1", "2", "3", "4"], "clear": ["5", "5", "5", "6"]}


def voted_run(cache, min_agreement: float):
    """A run stopped after vote: samples.parquet with the vote's columns only, config with min_agreement."""
    run = make_run_dir(cache / "runs" / "voted", num_questions=3, num_samples=4)
    rows = [{"question_id": q, "sample_id": j, "question": f"question {q}?", "rationale": f"so {a}. The answer is {a}.",
             "answer": a, "gold": "5", "is_correct": a == "5"} for q, answers in ANSWERS.items()
            for j, a in enumerate(answers)]
    vote_table(pd.DataFrame(rows), min_agreement).to_parquet(run / "samples.parquet", index=False)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "min_agreement": min_agreement}))
    return run


def drill_down(at, question_id: str) -> str:
    """The vote line of `question_id`'s drill-down (the row picked as a click would)."""
    at.text_input[0].set_value(f"question {question_id}?").run()
    at.session_state["explorer"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return next(m.value for m in at.markdown if "answer entropy" in m.value)


def test_the_explorer_opens_before_scoring_and_shows_the_tie_rule(cache):
    voted_run(cache, 0.0)
    at = open_page("views/explorer.py")
    assert any("has no losses yet" in i.value and "score stage" in i.value for i in at.info)
    assert next(c.value for c in at.caption if "candidates match" in c.value).startswith("12 of 12")
    assert not [s for s in at.slider if s.label == "DS-weight range"]  # no weights yet
    line = drill_down(at, "tie")
    assert "majority answer **9**" in line and "**tie**" in line and "sampled first" in line
    assert "plurality" in drill_down(at, "weak")  # 1 of 4 wins with min_agreement 0, and says so


def test_a_question_below_min_agreement_has_no_majority_and_says_why(cache):
    voted_run(cache, 0.5)
    at = open_page("views/explorer.py")
    line = drill_down(at, "weak")
    assert "no majority answer" in line and "1 of 4" in line and "min_agreement 0.5" in line
    assert "majority answer **5**" in drill_down(at, "clear") and "tie" not in drill_down(at, "clear")
