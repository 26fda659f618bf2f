"""Few-shot prompt format: exemplars parse back to their answers and never contain a stop string."""
from __future__ import annotations

import re

import pytest

from iwsi.answers import extract_answer
from iwsi.engines.hf import cut_at_stop as hf_cut_at_stop
from iwsi.prompts import EXEMPLARS, STOP, few_shot_prefix, format_rationale_target, question_suffix, rationale_text
from iwsi.records import TASKS

BLOCK = re.compile(r"Q: (?P<q>[^\n]+)\nA: (?P<a>[^\n]+ The answer is [^\n]+\.)\n\n")


def test_every_task_has_three_or_four_exemplars():
    assert set(EXEMPLARS) == set(TASKS)
    assert all(3 <= len(v) <= 4 for v in EXEMPLARS.values())


@pytest.mark.parametrize("task", TASKS)
def test_prefix_is_exactly_q_a_blocks(task):
    prefix = few_shot_prefix(task)
    blocks = list(BLOCK.finditer(prefix))
    assert "".join(b.group(0) for b in blocks) == prefix
    assert len(blocks) == len(EXEMPLARS[task])


@pytest.mark.parametrize("task", TASKS)
def test_exemplar_rationales_parse_to_their_answer_and_have_no_stop(task):
    for question, reasoning, answer in EXEMPLARS[task]:
        rationale = rationale_text(reasoning, answer)
        assert extract_answer(rationale, task) == answer
        assert not any(stop in rationale or stop in question for stop in STOP)
        assert cut_at_stop(" " + rationale + "\n\nQ: next") == rationale


def test_number_exemplar_steps_are_correct_arithmetic():
    for _, reasoning, answer in EXEMPLARS["number"]:
        steps = re.findall(r"(\d+(?:\.\d+)?) ([-+*/]) (\d+(?:\.\d+)?) = (\d+(?:\.\d+)?)", reasoning)
        assert steps, reasoning
        for a, op, b, c in steps:
            assert eval(f"{a}{op}{b}") == float(c)  # noqa: S307 — test-only, digits and one operator
        assert steps[-1][3] == answer


def test_full_prompt_is_prefix_plus_suffix():
    prompt = few_shot_prefix("number") + question_suffix("  How many?  ")
    assert prompt == few_shot_prefix("number") + "Q: How many?\nA:"
    assert question_suffix("Why?") == "Q: Why?\nA:"


def cut_at_stop(text: str) -> str:
    """How the engines cut a continuation (iwsi.engines.hf.cut_at_stop with the prompts' STOP)."""
    return hf_cut_at_stop(text, list(STOP)).strip()


def test_cut_at_stop_takes_the_first_stop():
    assert cut_at_stop(" 2 + 2 = 4. The answer is 4.\nQ: Next question") == "2 + 2 = 4. The answer is 4."
    assert cut_at_stop(" line one\nline two\n\nQ: x\n\n") == "line one\nline two"
    assert cut_at_stop(" no stop here") == "no stop here"


def test_rationale_text_adds_a_missing_full_stop():
    assert rationale_text("So he got 1800 skips", "1800") == "So he got 1800 skips. The answer is 1800."
    assert rationale_text("", "B") == "The answer is B."
    assert format_rationale_target("x. The answer is 1. ") == " x. The answer is 1.\n\n"


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        few_shot_prefix("poetry")
