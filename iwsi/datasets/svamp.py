"""Dataset `svamp`: reads `train.jsonl` / `test.jsonl` (ChilleD split) from data_dir.

Returns task "number" splits. Question = `question_concat` (or `Body + " " + Question`); gold =
`Answer` normalised. SVAMP has no written rationales, so one is built from `Equation`: each
operation becomes a step, e.g. "( 290.0 / 2.0 )" -> "290 / 2 = 145. The answer is 145.".
"""
from __future__ import annotations

from iwsi.answers import normalize_number
from iwsi.arith import evaluate
from iwsi.datasets._io import DatasetError, Row, clean_text, read_rows, require_dir, require_file
from iwsi.datasets._split import Sizes, make_splits
from iwsi.prompts import rationale_text
from iwsi.records import Question, Splits

NAME = "svamp"


def _number(value: float) -> str:
    return normalize_number(repr(float(value))) or repr(value)


def equation_steps(equation: str) -> tuple[list[str], float]:
    """Steps "a op b = c" (innermost first) and the value of an arithmetic expression.

    >>> equation_steps("( ( 7.0 + 3.0 ) - 5.0 )")
    (['7 + 3 = 10', '10 - 5 = 5'], 5.0)
    """
    steps: list[str] = []

    def step(left: float, symbol: str, right: float, value: float) -> None:
        steps.append(f"{_number(left)} {symbol} {_number(right)} = {_number(value)}")

    return steps, evaluate(equation, step)


def to_question(row: Row, question_id: str, with_rationale: bool) -> Question:
    gold = normalize_number(row.get("Answer"))
    if gold is None:
        raise DatasetError(f"{row.where()}: cannot parse Answer {row.get('Answer')!r} as a number")
    question = (clean_text(row.data["question_concat"]) if row.data.get("question_concat")
                else f"{row.text('Body')} {row.text('Question')}")
    rationale = _rationale(row, gold) if with_rationale else None
    return Question(question_id, question, "number", gold, rationale)


def _rationale(row: Row, gold: str) -> str:
    try:
        steps, value = equation_steps(str(row.get("Equation")))
    except (SyntaxError, ValueError, ZeroDivisionError) as err:
        raise DatasetError(f"{row.where()}: cannot evaluate Equation {row.get('Equation')!r} ({err})") from None
    if abs(value - float(gold)) > 1e-6:
        raise DatasetError(f"{row.where()}: Equation gives {_number(value)} but Answer is {gold}; fix the record")
    return rationale_text(". ".join(steps), gold)


def equation_matches(row: Row) -> bool:
    """Whether the row's Equation evaluates to its Answer (train line 352 of the real data does not:
    "( ( 4.0 - 2.0 ) + 3.0 )" with Answer 1); such rows cannot give a valid rationale."""
    try:
        return abs(equation_steps(str(row.data.get("Equation")))[1] - float(row.data.get("Answer"))) < 1e-6
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError):
        return False


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    folder = require_dir(data_dir, NAME)
    train = read_rows(require_file(folder, "train", NAME))
    test = read_rows(require_file(folder, "test", NAME)) if sizes.test_size else []
    return make_splits(NAME, train, test, sizes, to_question, has_rationale=equation_matches)
