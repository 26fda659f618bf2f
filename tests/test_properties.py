"""Property-based tests (hypothesis) for the pure parts: answer extraction, vote, DS weights, filters."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iwsi.answers import NLI_LABELS, extract_answer, is_correct, normalize_gold, normalize_number
from iwsi.dsweight import ds_weight, importance_weight
from iwsi.filtering import iwsi, keep_lowest, num_to_keep, select
from iwsi.records import TASKS
from iwsi.vote import agreement, answer_entropy, majority, vote_table

settings.register_profile("iwsi", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("iwsi")

ANSWER = st.one_of(st.none(), st.sampled_from(["1", "2", "3", "-4", "0.5"]))
POSITIVE = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
K = st.floats(min_value=0.01, max_value=100.0, allow_nan=False)


# -- answer extraction ---------------------------------------------------------------------------------
@given(text=st.text(), task=st.sampled_from(TASKS))
def test_extraction_never_crashes_and_returns_a_valid_label(text, task):
    answer = extract_answer(text, task)
    assert answer is None or isinstance(answer, str)
    if answer is not None and task == "number":
        assert normalize_number(answer) == answer  # already canonical
    if answer is not None and task == "choice":
        assert answer in "ABCDE" and len(answer) == 1
    if answer is not None and task in ("yesno", "nli"):
        assert answer in NLI_LABELS


@given(text=st.text())
def test_text_without_the_answer_phrase_has_no_answer(text):
    assume("answer" not in text.lower())
    assert all(extract_answer(text, task) is None for task in TASKS)


@given(value=st.integers(min_value=-10**12, max_value=10**12), prefix=st.text(alphabet="abc xyz\n.,", max_size=30))
def test_a_stated_integer_is_extracted_exactly(value, prefix):
    assert extract_answer(f"{prefix} The answer is {value}.", "number") == str(value)


@given(before=st.integers(-1000, 1000), after=st.integers(-1000, 1000))
def test_only_the_last_answer_counts(before, after):
    assert extract_answer(f"The answer is {before}. Wait, the answer is {after}.", "number") == str(after)


@given(gold=st.integers(-10**6, 10**6))
def test_extracted_answer_matches_its_own_gold(gold):
    answer = extract_answer(f"So the answer is {gold:,}.", "number")
    assert is_correct(answer, normalize_gold(gold, "number"), "number")


# -- vote ----------------------------------------------------------------------------------------------
@given(answers=st.lists(ANSWER, max_size=12))
def test_vote_never_picks_an_unparseable_answer(answers):
    winner = majority(answers)
    parsed = [a for a in answers if a is not None]
    assert (winner is None) == (not parsed)
    if parsed:
        counts = Counter(parsed)
        assert counts[winner] == max(counts.values())


@given(answers=st.lists(ANSWER, min_size=1, max_size=12))
def test_agreement_and_entropy_are_shares(answers):
    assert 0.0 <= agreement(answers, majority(answers)) <= 1.0
    u = answer_entropy(answers)
    assert 0.0 <= u <= 1.0 + 1e-12
    if len(set(answers)) == 1 and answers[0] is not None:
        assert u == 0.0


@given(groups=st.lists(st.lists(ANSWER, min_size=1, max_size=6), min_size=1, max_size=6))
def test_vote_table_marks_exactly_the_majority_rows(groups):
    rows = [{"question_id": f"q{i}", "sample_id": j, "answer": a}
            for i, g in enumerate(groups) for j, a in enumerate(g)]
    df = vote_table(pd.DataFrame(rows))
    assert len(df) == len(rows)
    assert not df.loc[df["is_majority"], "answer"].isna().any()
    for qid, g in df.groupby("question_id"):
        winner = majority(groups[int(qid[1:])])
        assert g["is_majority"].sum() == sum(a == winner for a in groups[int(qid[1:])] if winner is not None)


# -- DS weights ----------------------------------------------------------------------------------------
@given(losses=st.lists(POSITIVE, min_size=1, max_size=30), valid=POSITIVE)
def test_ds_weight_is_at_least_one_and_symmetric(losses, valid):
    w = importance_weight(losses, valid)
    d = ds_weight(w)
    assert (d >= 1.0).all()
    np.testing.assert_allclose(d, ds_weight(1.0 / w))
    # a sample exactly as likely as the valid set has no shift
    assert ds_weight(importance_weight([valid], valid))[0] == 1.0


# -- filters -------------------------------------------------------------------------------------------
def samples_table(weights: list[float], majority_flags: list[bool]) -> pd.DataFrame:
    n = min(len(weights), len(majority_flags))
    return pd.DataFrame({"question_id": [f"q{i // 3}" for i in range(n)], "sample_id": [i % 3 for i in range(n)],
                         "ds_weight": weights[:n], "w_prime": weights[:n], "is_majority": majority_flags[:n],
                         "entropy": [0.0] * n, "is_correct": [True] * n})


TABLE = st.builds(samples_table, st.lists(st.floats(1.0, 50.0), min_size=1, max_size=40),
                  st.lists(st.booleans(), min_size=1, max_size=40))


@given(df=TABLE)
def test_k_100_keeps_all_of_d_c(df):
    kept, _ = iwsi(df, 100.0)
    assert kept.tolist() == df["is_majority"].tolist()


@given(df=TABLE, k=K)
def test_kept_share_is_within_one_sample_of_k(df, k):
    kept, threshold = iwsi(df, k)
    n = int(df["is_majority"].sum())
    assert abs(int(kept.sum()) - n * k / 100) <= 1
    assert not (kept & ~df["is_majority"]).any()  # kept ⊆ D_c
    if kept.any():
        # every kept weight is ≤ σ_k and every dropped majority weight is ≥ it
        assert df.loc[kept, "ds_weight"].max() == threshold
        dropped = df["is_majority"] & ~kept
        assert (df.loc[dropped, "ds_weight"] >= threshold).all()


@given(df=TABLE, k1=K, k2=K)
def test_raising_k_only_adds_samples(df, k1, k2):
    small, large = sorted((k1, k2))
    assert not (iwsi(df, small)[0] & ~iwsi(df, large)[0]).any()


@given(values=st.lists(st.floats(-1e6, 1e6), max_size=50), k=K)
def test_keep_lowest_count_and_order(values, k):
    mask = keep_lowest(pd.Series(values, dtype=float), k)
    assert mask.sum() == num_to_keep(len(values), k)
    if mask.any() and (~mask).any():
        assert max(np.array(values)[mask.to_numpy()]) <= min(np.array(values)[~mask.to_numpy()])


@given(df=TABLE, k=K, method=st.sampled_from(["iwsi", "lmsi", "entropy", "ground-truth", "iwsi-w"]))
def test_every_method_keeps_a_subset_of_d_c_deterministically(df, k, method):
    kept, threshold = select(df, method, k)
    assert not (kept & ~df["is_majority"]).any()
    assert kept.equals(select(df.copy(), method, k)[0])
    assert threshold is None or isinstance(threshold, float)
    if method == "iwsi" and df["is_majority"].any():
        assert not math.isnan(threshold)
