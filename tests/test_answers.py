"""Answer extraction and comparison: hand-computed cases and property tests."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iwsi.answers import NOT_SURE, extract_answer, is_correct, normalize_gold, normalize_number


@pytest.mark.parametrize("raw, expected", [
    ("5", "5"), ("5.0", "5"), ("5.", "5"), ("-3", "-3"), ("+4", "4"), ("0.250", "0.25"), (".5", "0.5"),
    ("$1,234", "1234"), ("850,000", "850000"), ("-$5", "-5"), ("$-5", "-5"), ("12%", "12"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ("3.14159265358979323846", "3.14159265358979323846"),
    ("-0", "0"), (145.0, "145"), (7, "7"),
    ("abc", None), ("", None), ("1,2", None), ("1.2.3", None), ("$", None), (".", None), (None, None), (True, None),
])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


@pytest.mark.parametrize("text, expected", [
    ("3 + 4 = 7. The answer is 7.", "7"),
    ("The answer is 5. Wait, no. The answer is 6.", "6"),  # the LAST one counts
    ("the ANSWER is: 42", "42"),
    ("So the answer is $1,250.50.", "1250.5"),
    ("The answer is -3 degrees.", "-3"),
    ("The answer is 3 + 4 = 7.", "7"),  # what follows the last "=" in the answer sentence
    ("The answer is 2.5 hours.", "2.5"),
    ("The answer is 5.0", "5"),
    ("The answer is 18 dollars. Then 99 more.", "18"),
    ("The answer is 3/4.", "0.75"), ("The answer is 1 / 0.", None),
    ("He has 7 apples.", None),  # no fallback to the last number
    ("The answer is unknown. He has 7 apples.", None),
    ("The answer is", None),
    ("", None),
])
def test_extract_number(text, expected):
    assert extract_answer(text, "number") == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is yes.", "yes"), ("So the answer is No.", "no"), ("The answer is true.", "yes"),
    ("The answer is false", "no"), ("The answer is A) yes.", "yes"), ("The answer is B) no.", "no"),
    ("The answer is (A).", "yes"), ("The answer is B.", "no"), ("The answer is A", "yes"),
    ("The answer is a resounding no.", "no"), ("The answer is maybe.", None), ("yes", None),
])
def test_extract_yesno(text, expected):
    assert extract_answer(text, "yesno") == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is B.", "B"), ("The answer is (C).", "C"), ("The answer is D) 24.", "D"),
    ("The answer is E", "E"), ("The answer is option A.", "A"), ("The answer is (b)", "B"),
    ("The answer is e) 150 km.", "E"), ("The answer is Alice.", None), ("The answer is F.", None),
    ("The answer is a dog.", None), ("The answer is 24.", None),
])
def test_extract_choice(text, expected):
    assert extract_answer(text, "choice") == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is yes.", "yes"), ("The answer is no.", "no"),
    ("The answer is it is not possible to tell.", NOT_SURE), ("The answer is impossible to tell.", NOT_SURE),
    ("The answer is maybe.", NOT_SURE), ("The answer is neutral.", NOT_SURE), ("The answer is entailment.", "yes"),
    ("The answer is contradiction.", "no"), ("The answer is cannot tell", NOT_SURE), ("The answer is purple.", None),
])
def test_extract_nli(text, expected):
    assert extract_answer(text, "nli") == expected


def test_unknown_task_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown task"):
        extract_answer("The answer is 5.", "poem")


@pytest.mark.parametrize("answer, gold, task, expected", [
    ("5.0", "5", "number", True), ("5", "6", "number", False), ("-3", "3", "number", False),
    ("1,000", "1000", "number", True), (None, "5", "number", False), ("5", None, "number", None),
    ("yes", "yes", "yesno", True), ("no", "yes", "yesno", False), ("B", "B", "choice", True),
    ("B", "C", "choice", False), (NOT_SURE, NOT_SURE, "nli", True), ("yes", NOT_SURE, "nli", False),
])
def test_is_correct(answer, gold, task, expected):
    assert is_correct(answer, gold, task) is expected


@pytest.mark.parametrize("gold, task, expected", [
    (True, "yesno", "yes"), (False, "yesno", "no"), ("b", "choice", "B"), ("e", "nli", "yes"),
    ("c", "nli", "no"), ("n", "nli", NOT_SURE), (145.0, "number", "145"), ("purple", "yesno", None),
])
def test_normalize_gold(gold, task, expected):
    assert normalize_gold(gold, task) == expected


NORMAL_FORMS = {"yesno": {"yes", "no"}, "choice": set("ABCDE"), "nli": {"yes", "no", NOT_SURE}}
tasks = st.sampled_from(["number", "yesno", "choice", "nli"])
PIECES = ["The answer is ", "the answer is:", "$", "-", ",", ".", "=", " ", "\n", "A)", "(B)", "yes", "no", "maybe",
          "1", "23", "4.5", "1,000"]
answerish = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


def _is_normal(answer: str | None, task: str) -> bool:
    if answer is None:
        return True
    if task == "number":
        return normalize_number(answer) == answer
    return answer in NORMAL_FORMS[task]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), answerish), task=tasks)
def test_extract_never_raises_and_is_normalised(text, task):
    assert _is_normal(extract_answer(text, task), task)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(-10**12, 10**12), st.decimals(allow_nan=False, allow_infinity=False, places=3)))
def test_number_round_trip(value):
    canonical = normalize_number(str(value))
    assert canonical is not None
    assert extract_answer(f"So 1 + 1 = 2. The answer is {canonical}.", "number") == canonical
    assert normalize_number(canonical) == canonical
