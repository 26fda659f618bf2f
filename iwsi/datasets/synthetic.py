"""Dataset `synthetic-arith`: generated 1–3 step arithmetic word problems (no files read).

Returns `Splits` of task "number". Every item has a human-style gold rationale whose steps read
"a op b = c" and that ends "The answer is N.". Generation is deterministic in the seed; test, valid
and pool come from separate random streams (so the test set does not move when the pool size
changes) and never share a question text. Mix: ~50 % one step, ~35 % two, ~15 % three; operands are
mostly ≤ 20, products ≤ 200, differences positive, divisions exact.
"""
from __future__ import annotations

import random

from iwsi.datasets._io import DatasetError
from iwsi.datasets._split import Sizes, check_sizes
from iwsi.prompts import rationale_text
from iwsi.records import Question, Splits

NAME = "synthetic-arith"

# (name, subject pronoun, object pronoun, possessive)
PEOPLE = [
    ("Tom", "he", "him", "his"), ("Anna", "she", "her", "her"), ("Ravi", "he", "him", "his"),
    ("Lucia", "she", "her", "her"), ("Ben", "he", "him", "his"), ("Mei", "she", "her", "her"),
    ("Omar", "he", "him", "his"), ("Zoe", "she", "her", "her"), ("Kofi", "he", "him", "his"),
    ("Ingrid", "she", "her", "her"), ("Diego", "he", "him", "his"), ("Hana", "she", "her", "her"),
    ("Sam", "he", "him", "his"), ("Priya", "she", "her", "her"), ("Jonas", "he", "him", "his"),
    ("Chloe", "she", "her", "her"), ("Yusuf", "he", "him", "his"), ("Elena", "she", "her", "her"),
    ("Max", "he", "him", "his"), ("Amara", "she", "her", "her"),
]
OBJECTS = [
    "apples", "marbles", "stickers", "pencils", "cookies", "books", "stamps", "crayons", "balloons",
    "cards", "shells", "oranges", "beads", "candies", "buttons", "flowers", "toy cars", "eggs",
]
CONTAINERS = [("bags", "bag"), ("boxes", "box"), ("packs", "pack"), ("jars", "jar"), ("baskets", "basket"),
              ("trays", "tray")]

# One-step templates: (question, rationale step). Keys: N P Po Pp F o c cs a b r.
ADD = [
    ("{N} has {a} {o}. {Pc} buys {b} more {o}. How many {o} does {N} have now?",
     "{N} has {a} {o} and buys {b} more, so {a} + {b} = {r}."),
    ("{N} picked {a} {o} in the morning and {b} {o} in the afternoon. How many {o} did {N} pick in total?",
     "{N} picked {a} and then {b} more, so {a} + {b} = {r}."),
    ("There are {a} {o} on the table. {N} puts {b} more {o} on the table. How many {o} are on the table now?",
     "There were {a} {o} and {b} more were added, so {a} + {b} = {r}."),
    ("{N} has {a} {o} and {F} has {b} {o}. How many {o} do they have altogether?",
     "Together they have {a} + {b} = {r} {o}."),
]
SUB = [
    ("{N} has {a} {o}. {Pc} gives {b} of them to {F}. How many {o} does {N} have left?",
     "{N} has {a} {o} and gives away {b}, so {a} - {b} = {r}."),
    ("There were {a} {o} in a box. {N} took {b} of them out. How many {o} are still in the box?",
     "{b} of the {a} {o} were taken out, so {a} - {b} = {r}."),
    ("{N} had {a} {o} but lost {b} of them. How many {o} does {N} have now?",
     "{N} had {a} {o} and lost {b}, so {a} - {b} = {r}."),
    ("{N} has {a} {o} and {F} has {b} {o}. How many more {o} does {N} have than {F}?",
     "{N} has {a} and {F} has {b}, so {a} - {b} = {r} more."),
]
MUL = [
    ("{N} buys {a} {c} of {o}. Each {cs} holds {b} {o}. How many {o} does {N} buy?",
     "There are {a} {c} with {b} {o} each, so {a} * {b} = {r}."),
    ("There are {a} {c} with {b} {o} in each. How many {o} are there in all?",
     "{a} {c} of {b} {o} make {a} * {b} = {r}."),
    ("{N} gets {b} {o} every day for {a} days. How many {o} does {N} get in total?",
     "{N} gets {b} {o} on each of {a} days, so {a} * {b} = {r}."),
]
DIV = [
    ("{N} has {a} {o} and shares them equally among {b} friends. How many {o} does each friend get?",
     "{a} {o} shared equally among {b} friends gives {a} / {b} = {r} each."),
    ("{N} packs {a} {o} into {c} with {b} {o} in each. How many {c} does {N} fill?",
     "Each {cs} takes {b} {o}, so {a} / {b} = {r} {c}."),
    ("{a} {o} are split equally into {b} {c}. How many {o} go in each {cs}?",
     "{a} {o} split into {b} equal {c} gives {a} / {b} = {r}."),
]
# Follow-up steps that change the running total x of a multi-step problem: (sentence, rationale step).
MORE = [("{P} finds {b} more.", "Finding {b} more gives {a} + {b} = {r}."),
        ("{F} gives {Po} {b} more.", "{F} gives {b} more, so {a} + {b} = {r}."),
        ("{P} buys {b} more.", "Buying {b} more gives {a} + {b} = {r}.")]
LESS = [("{P} gives {b} of them to {F}.", "Giving {b} to {F} leaves {a} - {b} = {r}."),
        ("{P} uses {b} of them.", "Using {b} leaves {a} - {b} = {r}."),
        ("{P} loses {b} of them.", "Losing {b} leaves {a} - {b} = {r}.")]
SPLIT = [("{P} splits them equally into {b} {c} and keeps one {cs}.",
          "Splitting {a} into {b} equal {c} gives {a} / {b} = {r} in the kept {cs}.")]
CONNECTORS = ["", "Then ", "After that, ", "Later "]
ENDINGS = ["How many {o} does {N} have now?", "How many {o} does {N} end up with?"]


def _context(rng: random.Random) -> dict[str, str]:
    (name, p, po, pp), friend = rng.sample(PEOPLE, 2)
    plural, singular = rng.choice(CONTAINERS)
    return {"N": name, "P": p, "Pc": p.capitalize(), "Po": po, "Pp": pp, "F": friend[0],
            "o": rng.choice(OBJECTS), "c": plural, "cs": singular}


def _operands(rng: random.Random, op: str) -> tuple[int, int, int]:
    """(a, b, result) with small whole numbers."""
    if op == "+":
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        return a, b, a + b
    if op == "-":
        a = rng.randint(5, 20)
        b = rng.randint(2, a - 1)
        return a, b, a - b
    if op == "*":
        a, b = rng.randint(2, 10), rng.randint(2, 12)
        return a, b, a * b
    b, r = rng.randint(2, 6), rng.randint(2, 10)
    return b * r, b, r


def _one_step(rng: random.Random, ctx: dict[str, str]) -> tuple[str, list[str], int]:
    op = rng.choices("+-*/", weights=[30, 30, 20, 20])[0]
    question, step = rng.choice({"+": ADD, "-": SUB, "*": MUL, "/": DIV}[op])
    a, b, r = _operands(rng, op)
    values = {**ctx, "a": a, "b": b, "r": r}
    return question.format(**values), [step.format(**values)], r


def _follow_up(rng: random.Random, ctx: dict[str, str], x: int) -> tuple[str, str, int]:
    """One step applied to the running total x: add, subtract, or split into equal parts."""
    divisors = [d for d in range(2, 7) if x % d == 0 and x // d >= 2]
    options = ["+"] + (["-"] if x >= 4 else []) + (["/"] if divisors else [])
    op = rng.choice(options)
    if op == "+":
        b, templates = rng.randint(2, 15), MORE
        r = x + b
    elif op == "-":
        b, templates = rng.randint(2, min(x - 1, 15)), LESS
        r = x - b
    else:
        b, templates = rng.choice(divisors), SPLIT
        r = x // b
    sentence, step = rng.choice(templates)
    values = {**ctx, "a": x, "b": b, "r": r}
    sentence = rng.choice(CONNECTORS) + sentence.format(**values)
    return sentence[0].upper() + sentence[1:], step.format(**values), r


def _chain(rng: random.Random, ctx: dict[str, str], steps: int) -> tuple[str, list[str], int]:
    """A multi-step problem: a starting amount (given, or bought in containers) then follow-ups."""
    if rng.random() < 0.5:
        a, b = rng.randint(2, 6), rng.randint(2, 10)
        x = a * b
        sentences = [f"{ctx['N']} buys {a} {ctx['c']} with {b} {ctx['o']} in each."]
        rationale = [f"{ctx['N']} buys {a} {ctx['c']} of {b}, so {a} * {b} = {x}."]
        steps -= 1
    else:
        x = rng.randint(5, 20)
        sentences, rationale = [f"{ctx['N']} has {x} {ctx['o']}."], []
    for _ in range(steps):
        sentence, step, x = _follow_up(rng, ctx, x)
        sentences.append(sentence)
        rationale.append(step)
    sentences.append(rng.choice(ENDINGS).format(**ctx))
    return " ".join(sentences), rationale, x


def make_problem(rng: random.Random) -> tuple[str, str, str]:
    """(question, gold rationale, gold answer) for one random problem."""
    ctx = _context(rng)
    steps = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]
    question, rationale, answer = _one_step(rng, ctx) if steps == 1 else _chain(rng, ctx, steps)
    return question, rationale_text(" ".join(rationale), str(answer)), str(answer)


MAX_QUESTIONS = 200_000


def _draw(seed: int, stream: str, count: int, taken: set[str]) -> list[tuple[str, str, str]]:
    """`count` problems whose question texts are new (not in `taken`); adds them to `taken`."""
    rng = random.Random(f"{seed}:{stream}")
    items: list[tuple[str, str, str]] = []
    for _ in range(count * 50 + 1000):  # duplicates are rare; this bound only guards a bug
        if len(items) == count:
            return items
        problem = make_problem(rng)
        if problem[0] not in taken:
            taken.add(problem[0])
            items.append(problem)
    if len(items) == count:
        return items
    raise RuntimeError(f"synthetic-arith: could only generate {len(items)} distinct questions of {count}")


def _questions(items: list[tuple[str, str, str]], split: str, keep_rationale: bool) -> list[Question]:
    return [Question(f"{NAME}-{split}-{i}", q, "number", gold, rationale if keep_rationale else None)
            for i, (q, rationale, gold) in enumerate(items)]


def load(data_dir: object, sizes: Sizes, seed: int, fields: dict | None = None) -> Splits:
    """Generate the splits; `data_dir` and `fields` are ignored (nothing is read)."""
    check_sizes(NAME, sizes)
    total = sizes.num_questions + sizes.valid_size + sizes.test_size
    if total > MAX_QUESTIONS:  # generation is quick, but not endless: refuse a typo before minutes of work
        raise DatasetError(f"{NAME}: num_questions + valid_size + test_size = {total} is more than the "
                           f"{MAX_QUESTIONS:,} questions it generates; lower them")
    taken: set[str] = set()
    test = _draw(seed, "test", sizes.test_size, taken)
    valid = _draw(seed, "valid", sizes.valid_size, taken)
    pool = _draw(seed, "pool", sizes.num_questions, taken)
    return Splits(pool=_questions(pool, "train", False), valid=_questions(valid, "valid", True),
                  test=_questions(test, "test", False),
                  notes=[f"synthetic-arith generated with seed {seed}"])
