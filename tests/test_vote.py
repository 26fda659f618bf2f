"""Majority vote, agreement and entropy on hand-computed cases."""
import math

import pandas as pd
import pytest

from iwsi.vote import agreement, answer_entropy, majority, vote_table


def test_majority_ignores_unparseable_even_when_most_common():
    assert majority([None, None, None, "7", "8", "7"]) == "7"


def test_majority_tie_goes_to_first_seen():
    assert majority(["9", "4", "4", "9"]) == "9"
    assert majority(["4", "9", "9", "4"]) == "4"


def test_agreement_over_parseable():
    assert agreement(["3", "3", "4", None], "3") == pytest.approx(2 / 3)
    assert agreement([None], None) == 0.0


def test_entropy_hand_computed():
    # answers 1,1,2,3 with m = 4: p = (.5, .25, .25) → H = 1.5 ln2 ; / ln 4 = 0.75
    assert answer_entropy(["1", "1", "2", "3"]) == pytest.approx(0.75)
    assert answer_entropy(["5"] * 4) == 0.0
    assert answer_entropy(["1", "2", "3", "4"]) == pytest.approx(1.0)
    # unparseable samples are distinct outcomes: two Nones + two "1" → p = (.5, .25, .25)
    assert answer_entropy([None, None, "1", "1"]) == pytest.approx(0.75)


def test_vote_table_keeps_every_majority_rationale():
    df = pd.DataFrame({"question_id": ["a"] * 4 + ["b"] * 3, "sample_id": [0, 1, 2, 3, 0, 1, 2],
                       "answer": ["2", "3", "2", None, None, None, None]})
    out = vote_table(df)
    assert out.loc[out.question_id == "a", "is_majority"].tolist() == [True, False, True, False]
    assert not out.loc[out.question_id == "b", "is_majority"].any()
    a = out[out.question_id == "a"].iloc[0]
    assert a["agreement"] == pytest.approx(2 / 3)
    assert a["entropy"] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(4))


def _candidates(answers: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame([{"question_id": q, "sample_id": j, "answer": a}
                         for q, row in answers.items() for j, a in enumerate(row)])


def test_a_tie_is_marked_and_goes_to_the_answer_sampled_first():
    df = vote_table(_candidates({"tie": ["9", "4", "4", "9"], "clear": ["5", "5", "5", "6"], "none": [None, None]}))
    per_q = df.groupby("question_id").first()
    assert per_q["tied"].to_dict() == {"clear": False, "none": False, "tie": True}
    assert per_q.loc["tie", "majority_answer"] == "9"
    assert df.loc[df.question_id == "tie", "is_majority"].tolist() == [True, False, False, True]


@pytest.mark.parametrize("minimum, in_d_c", [(0.0, {"all differ", "half", "three"}), (0.5, {"half", "three"}),
                                             (0.51, {"three"}), (1.0, set())])
def test_min_agreement_leaves_weak_pluralities_without_a_majority(minimum, in_d_c):
    df = vote_table(_candidates({"all differ": ["1", "2", "3", "4"], "half": ["1", "1", "2", "3"],
                                 "three": ["7", "7", "7", "8"]}), min_agreement=minimum)
    assert set(df.loc[df.is_majority, "question_id"]) == in_d_c
    per_q = df.groupby("question_id").first()
    assert per_q["agreement"].to_dict() == {"all differ": 0.25, "half": 0.5, "three": 0.75}  # how close it came
    assert per_q["majority_answer"].isna().to_dict() == {q: q not in in_d_c for q in per_q.index}
