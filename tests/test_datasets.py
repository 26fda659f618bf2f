"""Dataset loaders: real files in ../shared/data, tiny fixtures for the other formats, and errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from iwsi.answers import NOT_SURE, extract_answer
from iwsi.datasets import DATASETS, LOADERS, DatasetError, load_splits
from iwsi.datasets.svamp import equation_steps
from iwsi.datasets.synthetic import make_problem
from iwsi.records import TASKS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real(name: str) -> Path:
    path = DATA / name
    if not (path / "train.jsonl").exists():
        pytest.skip(f"real dataset not found at {path} (expected ../shared/data/{name} beside the repo)")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_round_trip(questions) -> None:
    for q in questions:
        assert q.rationale and "\n\n" not in q.rationale, q.question_id
        assert extract_answer(q.rationale, q.task) == q.gold, (q.question_id, q.rationale[-80:], q.gold)


def test_registry_names():
    expected = {"synthetic-arith", "gsm8k", "svamp", "strategyqa", "anli-r1", "anli-r2", "openbookqa", "aqua", "jsonl"}
    assert expected <= set(DATASETS) and DATASETS == tuple(LOADERS)


# ---- real data -------------------------------------------------------------------------------

def test_gsm8k_paper_split():
    s = load_splits("gsm8k", real("gsm8k"), 7099, 374, 1319)
    assert (len(s.pool), len(s.valid), len(s.test)) == (7099, 374, 1319)
    assert s.pool[0].question.startswith("Natalia sold clips to 48 of her friends")
    assert (s.pool[0].gold, s.pool[0].rationale) == ("72", None)
    assert s.valid[0].question_id == "gsm8k-train-7099" and s.test[-1].question_id == "gsm8k-test-1318"
    assert not any("<<" in q.rationale or "####" in q.rationale for q in s.valid)
    assert_round_trip(s.valid)


def test_gsm8k_all_train_rows_round_trip_and_keep_big_and_negative_golds():
    s = load_splits("gsm8k", real("gsm8k"), 1, 7472, 0)
    assert_round_trip(s.valid)
    golds = [q.gold for q in s.valid]
    assert all("," not in g for g in golds)
    assert sum(g.startswith("-") for g in golds) == 3  # README: 3 negative train answers
    first = s.valid[0]  # train row 1 (Weng): "0.2 x 50 = $<<0.2*50=10>>10" -> "0.2 x 50 = $10"
    assert "0.2 x 50 = $10." in first.rationale and first.rationale.endswith("The answer is 10.")


def test_svamp_paper_split_and_equation_rationale():
    s = load_splits("svamp", real("svamp"), 665, 35, 300)
    assert (len(s.pool), len(s.valid), len(s.test)) == (665, 35, 300)
    assert s.pool[0].question.startswith("There are 87 oranges and 290 bananas") and s.pool[0].gold == "145"
    assert_round_trip(s.valid)


def test_svamp_all_train_rows_round_trip_and_bad_record_is_counted():
    s = load_splits("svamp", real("svamp"), 1, 698, 0)
    assert_round_trip(s.valid)
    assert any("skipped 1" in n for n in s.notes)  # train line 352: Equation gives 5, Answer says 1


def test_equation_steps():
    assert equation_steps("( 290.0 / 2.0 )") == (["290 / 2 = 145"], 145.0)
    assert equation_steps("( 28.0 * ( 24.0 / 16.0 ) )") == (["24 / 16 = 1.5", "28 * 1.5 = 42"], 42.0)
    with pytest.raises(ValueError):
        equation_steps("__import__('os')")


def test_strategyqa_paper_split_yes_no_format():
    s = load_splits("strategyqa", real("strategyqa"), 1580, 23, 687)
    assert (len(s.pool), len(s.valid), len(s.test)) == (1580, 23, 687)
    q = s.pool[0]
    assert q.task == "yesno" and q.gold == "no" and q.question.endswith("Answer choices: A) yes; B) no")
    s = load_splits("strategyqa", real("strategyqa"), 1, 1602, 0)
    assert_round_trip(s.valid)


# ---- synthetic ---------------------------------------------------------------------------------

def _synthetic(seed: int = 0, n: int = 400, valid: int = 20, test: int = 200):
    return load_splits("synthetic-arith", None, n, valid, test, seed=seed)


def test_synthetic_is_deterministic_and_seed_dependent():
    a, b, c = _synthetic(0), _synthetic(0), _synthetic(1)
    assert a == b
    assert [q.question for q in a.test] != [q.question for q in c.test]


def test_synthetic_splits_are_disjoint_and_test_ignores_pool_size():
    s = _synthetic()
    texts = [q.question for q in s.pool + s.valid + s.test]
    assert len(texts) == len(set(texts))
    assert _synthetic(n=50).test == s.test
    assert all(q.rationale is None for q in s.pool + s.test) and all(q.gold for q in s.pool)


def test_synthetic_rationales_are_correct_arithmetic():
    import random
    rng = random.Random(3)
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    counts = {1: 0, 2: 0, 3: 0}
    for _ in range(1000):
        question, rationale, gold = make_problem(rng)
        steps = re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", rationale)
        assert 1 <= len(steps) <= 3, rationale
        counts[len(steps)] += 1
        for a, op, b, c in steps:
            assert ops[op](int(a), int(b)) == int(c) and int(c) >= 1, rationale
            assert int(a) <= 200 and int(b) <= 20, rationale
        assert steps[-1][3] == gold and extract_answer(rationale, "number") == gold
        assert question.endswith("?") and "\n" not in question
    assert 400 < counts[1] < 600 and 250 < counts[2] < 450 and 80 < counts[3] < 220


def test_synthetic_valid_round_trip():
    assert_round_trip(_synthetic(valid=300).valid)


# ---- fixtures for formats without real files -----------------------------------------------

def anli_rows(n: int, hf: bool = False) -> list[dict]:
    labels = ["e", "n", "c"]
    rows = []
    for i in range(n):
        row = {"uid": str(i), "hypothesis": f"Hypothesis {i}.", "reason": f"Because {i}." if i % 4 else ""}
        if hf:
            row.update(premise=f"Premise {i}.", label=i % 3)
        else:
            row.update(context=f"Premise {i}.", label=labels[i % 3])
        rows.append(row)
    return rows


@pytest.mark.parametrize("hf", [False, True])
def test_anli_v1_and_hf_forms(tmp_path, hf):
    for split in ("train", "dev", "test"):
        write_jsonl(tmp_path / "R1" / f"{split}.jsonl", anli_rows(12, hf))
    s = load_splits("anli-r1", tmp_path, 4, 3, 5)
    assert [q.gold for q in s.pool] == ["yes", NOT_SURE, "no", "yes"]
    assert s.pool[0].question.startswith("Premise: Premise 0. Hypothesis: Hypothesis 0.")
    # rows 4.. after the pool: row 4 has an empty reason and is skipped (and counted)
    assert [q.question_id for q in s.valid] == ["anli-r1-train-5", "anli-r1-train-6", "anli-r1-train-7"]
    assert any("skipped 1" in n for n in s.notes)
    assert_round_trip(s.valid)
    assert s.valid[0].rationale == "Because 5. The answer is no."


def test_anli_without_train_uses_dev_and_says_so(tmp_path):
    write_jsonl(tmp_path / "dev.jsonl", anli_rows(10))
    write_jsonl(tmp_path / "test.jsonl", anli_rows(5))
    s = load_splits("anli-r2", tmp_path, 5, 2, 5)
    assert s.pool[0].question_id == "anli-r2-dev-0"
    assert any("no train file" in n and "dev.jsonl" in n for n in s.notes)


def test_anli_bad_label_names_the_record(tmp_path):
    rows = anli_rows(6)
    rows[2]["label"] = "x"
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", anli_rows(2))
    with pytest.raises(DatasetError, match=r"train.jsonl line 3: label 'x'"):
        load_splits("anli-r1", tmp_path, 4, 1, 1)


def obqa_rows(n: int) -> list[dict]:
    return [{"id": str(i), "question_stem": f"Which thing {i}?", "answerKey": "ABCD"[i % 4],
             "choices": {"text": ["sun", "moon", "rock", "tree"], "label": ["A", "B", "C", "D"]}} for i in range(n)]


def test_openbookqa(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", obqa_rows(8))
    write_jsonl(tmp_path / "test.jsonl", obqa_rows(3))
    s = load_splits("openbookqa", tmp_path, 5, 2, 3)
    assert s.pool[1].question == "Which thing 1? Answer choices: A) sun; B) moon; C) rock; D) tree"
    assert s.pool[1].gold == "B" and s.pool[1].task == "choice"
    assert s.valid[0].rationale == "The correct option is moon. The answer is B."
    assert any("no human rationales" in n for n in s.notes)
    assert_round_trip(s.valid)


def aqua_rows(n: int) -> list[dict]:
    return [{"question": f"What is {i} + 2?", "options": ["A)1", "B)2", "C) 3", "D)4", "E)5"],
             "rationale": f"{i} + 2 = {i + 2}\n\nAnswer: {'ABCDE'[i % 5]}", "correct": "ABCDE"[i % 5]}
            for i in range(n)]


def test_aqua_json_named_jsonl(tmp_path):
    write_jsonl(tmp_path / "train.json", aqua_rows(6))
    write_jsonl(tmp_path / "test.json", aqua_rows(2))
    s = load_splits("aqua", tmp_path, 4, 2, 2)
    assert s.pool[0].question == "What is 0 + 2? Answer choices: A) 1; B) 2; C) 3; D) 4; E) 5"
    assert s.valid[0].rationale == "4 + 2 = 6. The answer is E."
    assert_round_trip(s.valid)


def test_commonsenseqa_uses_dev_as_test_when_test_has_no_answers(tmp_path):
    def rows(n, key=True):
        return [{"id": str(i), "answerKey": "ABCDE"[i % 5] if key else "",
                 "question": {"stem": f"Where {i}?", "choices": [{"label": c, "text": c.lower()} for c in "ABCDE"]}}
                for i in range(n)]
    write_jsonl(tmp_path / "train_rand_split.jsonl", rows(6))
    write_jsonl(tmp_path / "dev_rand_split.jsonl", rows(4))
    write_jsonl(tmp_path / "test.jsonl", rows(4, key=False))
    s = load_splits("commonsenseqa", tmp_path, 4, 2, 3)
    assert s.test[0].gold == "A" and any("test split taken from dev_rand_split.jsonl" in n for n in s.notes)
    assert_round_trip(s.valid)


# ---- generic jsonl ---------------------------------------------------------------------------

def test_jsonl_single_file_infers_number_and_appends_answer(tmp_path):
    rows = [{"q": f"What is {i} + 1?", "a": str(i + 1), "why": f"{i} + 1 = {i + 1}"} for i in range(10)]
    rows[0].pop("a")  # pool rows may be unlabelled
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    s = load_splits("jsonl", path, 5, 2, 3, fields={"question": "q", "answer": "a", "rationale": "why"})
    assert s.pool[0].gold is None and s.pool[1].gold == "2"
    assert [q.question for q in s.test] == ["What is 7 + 1?", "What is 8 + 1?", "What is 9 + 1?"]
    assert s.valid[0].rationale == "5 + 1 = 6. The answer is 6."
    assert any("jsonl task: number" in n for n in s.notes)


@pytest.mark.parametrize("answers, task", [(["yes", "no", True], "yesno"), (["A", "(b)", "C"], "choice"),
                                           (["yes", "neutral", "no"], "nli"), ([1, "2.5", "-3"], "number")])
def test_jsonl_task_inference(tmp_path, answers, task):
    rows = [{"question": f"q{i}", "answer": a, "rationale": "r."} for i, a in enumerate(answers * 2)]
    s = load_splits("jsonl", write_jsonl(tmp_path / "d.jsonl", rows), 2, 2, 2)
    assert {q.task for q in s.pool} == {task} and task in TASKS


def test_jsonl_folder_with_train_and_test(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": f"q{i}", "answer": "yes", "rationale": "r"} for i in range(4)])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "t", "answer": "no"}])
    s = load_splits("jsonl", tmp_path, 2, 2, 1)
    assert s.test[0].question_id == "jsonl-test-0" and s.test[0].gold == "no"
    assert s.valid[0].rationale == "r. The answer is yes."


def test_jsonl_uninferable_task_asks_for_fields_task(tmp_path):
    rows = [{"question": "q", "answer": a, "rationale": "r"} for a in ["7", "purple", "8"]]
    with pytest.raises(DatasetError, match=r"line 2: 'purple'.*fields.task"):
        load_splits("jsonl", write_jsonl(tmp_path / "d.jsonl", rows), 1, 1, 1)


# ---- errors --------------------------------------------------------------------------------

def gsm_rows(n: int) -> list[dict]:
    return [{"question": f"Q{i}?", "answer": f"{i} + 1 = <<{i}+1={i + 1}>>{i + 1}\n#### {i + 1}"} for i in range(n)]


def test_bad_json_line_is_named(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", gsm_rows(3))
    path.write_text(path.read_text() + "{not json\n")
    write_jsonl(tmp_path / "test.jsonl", gsm_rows(1))
    with pytest.raises(DatasetError, match=r"train.jsonl line 4: not valid JSON"):
        load_splits("gsm8k", tmp_path, 1, 1, 1)


def test_missing_field_names_file_line_and_field(tmp_path):
    rows = gsm_rows(3)
    del rows[1]["question"]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", gsm_rows(1))
    with pytest.raises(DatasetError, match=r"train.jsonl line 2: missing field 'question'"):
        load_splits("gsm8k", tmp_path, 2, 1, 1)


def test_unparseable_gold_names_the_record(tmp_path):
    rows = gsm_rows(3)
    rows[2]["answer"] = "some work\n#### lots"
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", gsm_rows(1))
    with pytest.raises(DatasetError, match=r"train.jsonl line 3: cannot parse the final answer 'lots'"):
        load_splits("gsm8k", tmp_path, 2, 1, 1)


def test_missing_dir_file_and_empty_file(tmp_path):
    with pytest.raises(DatasetError, match="no data_dir given"):
        load_splits("gsm8k", None, 1, 1, 1)
    with pytest.raises(DatasetError, match="does not exist"):
        load_splits("gsm8k", tmp_path / "nope", 1, 1, 1)
    with pytest.raises(DatasetError, match=r"no train file in .*train.jsonl"):
        load_splits("gsm8k", tmp_path, 1, 1, 1)
    (tmp_path / "train.jsonl").write_text("\n")
    write_jsonl(tmp_path / "test.jsonl", gsm_rows(1))
    with pytest.raises(DatasetError, match="the train file has no records"):
        load_splits("gsm8k", tmp_path, 1, 1, 1)


def test_too_small_for_requested_sizes(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm_rows(5))
    write_jsonl(tmp_path / "test.jsonl", gsm_rows(2))
    with pytest.raises(DatasetError, match=r"has 5 rows, fewer than num_questions \+ valid_size = 6"):
        load_splits("gsm8k", tmp_path, 5, 1, 1)
    with pytest.raises(DatasetError, match=r"has 2 rows, fewer than test_size = 3"):
        load_splits("gsm8k", tmp_path, 3, 1, 3)
    with pytest.raises(DatasetError, match="valid_size must be at least 1"):
        load_splits("gsm8k", tmp_path, 3, 0, 1)


def test_too_few_held_out_rows_with_rationale(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", anli_rows(9))  # rows 4 and 8 have an empty reason
    write_jsonl(tmp_path / "test.jsonl", anli_rows(1))
    with pytest.raises(DatasetError, match=r"only 3 rows after the first 4 .* fewer than valid_size = 4"):
        load_splits("anli-r1", tmp_path, 4, 4, 1)


def test_unknown_dataset_and_fields_key(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        load_splits("mnist", tmp_path, 1, 1, 1)
    with pytest.raises(DatasetError, match=r"unknown fields key\(s\) \['quesiton'\]"):
        load_splits("jsonl", tmp_path, 1, 1, 1, fields={"quesiton": "q"})
