"""Known-defect variants (iwsi/probe_variants.py): exact outputs on hand-made rationales, the final
answer never changes, and a rationale too short for a defect is reported, not dropped."""
from __future__ import annotations

import pytest

from iwsi.answers import extract_answer
from iwsi.probe_variants import _NUMBER, KINDS, Variant, make_variant, make_variants, parse, reasoning, render

TWO_STEPS = "Sara gave away 6 of her 15 shells, so 15 - 6 = 9.\nThen she found 4 more, so 9 + 4 = 13. The answer is 13."
YESNO = "Penguins breed on the ice of Antarctica. Emperor penguins live there all year. The answer is yes."


def test_parse_and_render_round_trip():
    p = parse(TWO_STEPS)
    assert p.steps == ["Sara gave away 6 of her 15 shells, so 15 - 6 = 9.", "Then she found 4 more, so 9 + 4 = 13."]
    assert p.seps == ["\n"] and p.answer == "The answer is 13."
    assert render(p.steps, p.seps, p.answer, p.before_answer) == TWO_STEPS
    assert parse("It costs $0.5 each, 1,250 in all. The answer is 7.").steps == ["It costs $0.5 each, 1,250 in all."]
    assert parse("no final sentence") is None


def test_redundant_repeats_a_step_and_adds_an_irrelevant_sentence():
    v = make_variant("redundant", TWO_STEPS, "number", 0, "q1")
    assert v.text == ("Sara gave away 6 of her 15 shells, so 15 - 6 = 9.\nLet me write the numbers down neatly first. "
                      "Then she found 4 more, so 9 + 4 = 13. Then she found 4 more, so 9 + 4 = 13. The answer is 13.")
    assert v.note.startswith("repeated step 2")


def test_jumping_keeps_only_the_last_step_or_the_bare_answer():
    last = "Then she found 4 more, so 9 + 4 = 13. The answer is 13."
    assert make_variant("jumping", TWO_STEPS, "number", 0, "q1").text == last
    one = "Tom has 16 stamps and gives away 6, so 16 - 6 = 10. The answer is 10."
    assert make_variant("jumping", one, "number", 0, "q").text == "The answer is 10."


def test_spurious_number_task_changes_one_number_in_the_steps():
    v = make_variant("spurious", TWO_STEPS, "number", 0, "q1")
    assert v == Variant("spurious", "Sara gave away 6 of her 15 shells, so 15 - 6 = 6.\n"
                                    "Then she found 4 more, so 9 + 4 = 13. The answer is 13.", "step 1: 9 → 6")


def test_spurious_other_tasks_borrow_an_unrelated_justification():
    donors = ("The Moon can be seen by day.", reasoning(YESNO))  # its own reasoning is never borrowed
    v = make_variant("spurious", YESNO, "yesno", 0, "q2", donors)
    assert v.text == "The Moon can be seen by day. The answer is yes."


def test_style_numbers_the_same_steps():
    assert make_variant("style", TWO_STEPS, "number", 0, "q1").text == (
        "Step 1: Sara gave away 6 of her 15 shells, so 15 - 6 = 9.\nStep 2: Then she found 4 more, so 9 + 4 = 13.\n"
        "The answer is 13.")


@pytest.mark.parametrize("kind", KINDS)
def test_too_short_is_reported_not_skipped(kind):
    v = make_variant(kind, "The answer is 7.", "number", 0, "q3")
    assert v.kind == kind and v.text is None and v.note
    # no number, no donor
    assert make_variant("spurious", "Add them up. The answer is 7.", "number", 0, "q3").text is None
    assert make_variant(kind, "seven", "number", 0, "q3").text is None


@pytest.mark.parametrize("text,task", [(TWO_STEPS, "number"), (YESNO, "yesno"),
                                       ("Ice melts above 0 degrees. Stone does not. The answer is B.", "choice"),
                                       ("It costs 1,250.50 dollars and 3 more. The answer is $1,253.50.", "number")])
def test_final_answer_unchanged_and_deterministic(text, task):
    donors = ("An unrelated fact about 12 birds.",)
    for seed in range(5):
        variants = make_variants(text, task, seed, "key", donors=donors)
        assert variants == make_variants(text, task, seed, "key", donors=donors)
        for v in variants:
            assert v.text is not None and v.text != text
            assert v.text.endswith(parse(text).answer)
            assert extract_answer(v.text, task) == extract_answer(text, task)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown defect kind"):
        make_variant("sloppy", TWO_STEPS, "number", 0, "q")


SEVERE_CASE = "Tom has 16 stamps and gives away 6, so 16 - 6 = 10. Then he buys 3, so 10 + 3 = 13. The answer is 13."


def test_severe_variants_touch_every_step_and_keep_the_answer():
    from iwsi.probe_variants import make_variant, parse

    steps = parse(SEVERE_CASE).steps
    redundant = make_variant("redundant", SEVERE_CASE, "number", 0, "q1", severity="severe").text
    assert all(redundant.count(step) == 2 for step in steps)
    assert make_variant("jumping", SEVERE_CASE, "number", 0, "q1", severity="severe").text == "The answer is 13."
    spurious = make_variant("spurious", SEVERE_CASE, "number", 0, "q1", severity="severe")
    changed = parse(spurious.text).steps
    # every number the variant module recognises ("6," before a comma is not one: it may be a thousands group)
    numbers = [[m.group() for m in _NUMBER.finditer(" ".join(s))] for s in (steps, changed)]
    assert len(numbers[0]) == len(numbers[1]) == 7 and all(a != b for a, b in zip(*numbers))
    for kind in ("redundant", "jumping", "spurious", "style"):
        assert make_variant(kind, SEVERE_CASE, "number", 0, "q1", severity="severe").text.endswith("The answer is 13.")


def test_mild_is_the_default_and_an_unknown_severity_is_refused():
    from iwsi.probe_variants import make_variant

    for kind in ("redundant", "jumping", "spurious", "style"):
        assert make_variant(kind, SEVERE_CASE, "number", 3, "q") == make_variant(kind, SEVERE_CASE, "number", 3, "q",
                                                                                 severity="mild")
    with pytest.raises(ValueError, match="choose from mild, severe"):
        make_variant("jumping", SEVERE_CASE, "number", 0, "q", severity="gross")
