"""Known-defect variants of a human rationale, for the DSE probe (pure: no torch, no I/O).

`make_variant(kind, rationale, task, seed, key)` rewrites the reasoning of a rationale written as
"<steps> The answer is X." and keeps the final "The answer is X." sentence byte for byte, so the
variant's answer is the clean one's. Each kind is one small function (examples on the synthetic
rationale "Tom has 16 stamps and gives away 6, so 16 - 6 = 10. The answer is 10."):

- redundant: one step repeated right after itself and one irrelevant sentence inserted
  → "Tom has 16 stamps and gives away 6, so 16 - 6 = 10. Tom has 16 stamps and gives away 6, so
     16 - 6 = 10. It helps to read the question twice. The answer is 10."
- jumping:   only the last step kept (the bare answer when there is a single step)
  → "The answer is 10."
- spurious:  number tasks: one number in the steps changed, so a step is wrong while the answer is
  right → "Tom has 16 stamps and gives away 6, so 16 - 8 = 10. The answer is 10.";
  other tasks (or steps without numbers): the steps of another question's rationale (`donors`),
  an unrelated justification → "<another question's facts> The answer is no."
- style:     the same steps in another register, numbered lines (not a defect: a control that
  shows how much of a signal is mere wording) → "Step 1: Tom has ... = 10.\\nThe answer is 10."

A rationale that has no step to work on (e.g. already the bare answer for `jumping`) gives a
Variant with `text=None` and the reason in `note`: the probe reports it, never drops it silently.
Randomness comes from `random.Random(f"{seed}|{key}|{kind}")`, so a variant depends only on the
seed, the row key and the kind (not on which other rows or kinds are built).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal

from iwsi.taxonomy import DEFECTS

KINDS = (*DEFECTS, "style")  # "style": a control, the same reasoning reworded
# How much of the rationale a defect touches: mild (one step repeated, only the last step kept, one number
# changed) or severe (every step repeated, the whole reasoning removed, every number changed). Style is a
# control and the same at both; spurious on a task without numbers borrows whole steps at both.
SEVERITIES = ("mild", "severe")

_ANSWER_IS = re.compile(r"the\s+answer\s+is\b", re.IGNORECASE)
# A step ends at a newline, or at . ! ? followed by a space ("0.5" and "$1.25" stay whole).
_STEP_SPLIT = re.compile(r"(?<=[.!?])[ \t]+|[ \t]*\n+[ \t]*")
# A whole number or decimal, with thousands commas; not part of a word ("x2") or of a longer number.
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,]|\.\d)|(?<![\w.,])\d+(?:\.\d+)?(?![\w,]|\.\d)")

# Irrelevant sentences for `redundant`: true of any question, and without "the answer is".
FILLERS = (
    "It helps to read the question twice.",
    "Let me write the numbers down neatly first.",
    "This kind of question comes up often.",
    "It is good to keep track of each quantity.",
    "Careful reading makes this easier.",
    "We should not rush this.",
)


@dataclass(frozen=True)
class Parsed:
    """A rationale cut into reasoning steps, the separators between them, and the answer sentence."""

    steps: list[str]
    seps: list[str]   # seps[i] separates steps[i] and steps[i + 1]
    answer: str       # "The answer is X." exactly as written
    before_answer: str  # whitespace between the last step and the answer sentence


@dataclass(frozen=True)
class Variant:
    kind: str
    text: str | None  # None: this rationale is too short for this defect
    note: str         # what was changed, or why nothing could be


def parse(rationale: str) -> Parsed | None:
    """Split "<steps> The answer is X." (None when there is no "The answer is" sentence)."""
    matches = list(_ANSWER_IS.finditer(rationale or ""))
    if not matches:
        return None
    start = matches[-1].start()
    reasoning = rationale[:start]
    body = reasoning.rstrip()
    gap = reasoning[len(body):] or " "
    parts = _STEP_SPLIT.split(body.strip()) if body.strip() else []
    seps = _STEP_SPLIT.findall(body.strip()) if body.strip() else []
    return Parsed(steps=parts, seps=seps, answer=rationale[start:], before_answer=gap)


def render(steps: list[str], seps: list[str], answer: str, before_answer: str = " ") -> str:
    """Inverse of parse: steps joined by their separators, then the answer sentence."""
    if not steps:
        return answer
    body = steps[0] + "".join(sep + step for sep, step in zip(seps, steps[1:]))
    return body + before_answer + answer


def _rng(seed: int, key: str, kind: str) -> random.Random:
    return random.Random(f"{seed}|{key}|{kind}")  # str seeds hash with SHA-512: stable across runs


def redundant(p: Parsed, rng: random.Random, severe: bool = False) -> tuple[str | None, str]:
    if not p.steps:
        return None, "no reasoning step to repeat (the rationale is only the answer sentence)"
    i = rng.randrange(len(p.steps))
    steps, seps = list(p.steps), list(p.seps)
    if severe:  # each step right after itself
        steps = [step for step in p.steps for _ in (0, 1)]
        seps = [sep for original in [*p.seps, None] for sep in (" ", original)][:-1]
    else:
        steps.insert(i + 1, p.steps[i])
        seps.insert(i, " ")
    filler = rng.choice(FILLERS)
    j = rng.randrange(len(steps) + 1)  # insert position, 0 … after the last step
    steps.insert(j, filler)
    seps.insert(min(j, len(seps)), " ")
    what = "repeated every step" if severe else f"repeated step {i + 1}"
    note = f"{what}; inserted {filler!r} at position {j + 1}"
    return render(steps, seps, p.answer, p.before_answer), note


def jumping(p: Parsed, rng: random.Random, severe: bool = False) -> tuple[str | None, str]:
    if not p.steps:
        return None, "already the bare answer: no step to remove"
    if severe:
        return p.answer, f"removed all {len(p.steps)} step(s): bare answer"
    if len(p.steps) == 1:
        return p.answer, "removed the only step: bare answer"
    removed = "step 1" if len(p.steps) == 2 else f"steps 1–{len(p.steps) - 1}"
    return render(p.steps[-1:], [], p.answer, p.before_answer), f"removed {removed} of {len(p.steps)}"


def _changed_number(text: str, rng: random.Random) -> str:
    """A different non-negative number written like `text` ("1,250" → "1,252", "0.5" → "0.7")."""
    value = Decimal(text.replace(",", ""))
    places = -value.as_tuple().exponent if value.as_tuple().exponent < 0 else 0
    unit = Decimal(1).scaleb(-places)
    deltas = [d for d in (-3, -2, -1, 1, 2, 3) if value + d * unit >= 0]
    new = value + rng.choice(deltas) * unit
    out = f"{new:.{places}f}"
    if "," in text:
        whole, _, frac = out.partition(".")
        out = f"{int(whole):,}" + (f".{frac}" if frac else "")
    return out


def spurious(p: Parsed, rng: random.Random, task: str, donors: tuple[str, ...] = (),
             severe: bool = False) -> tuple[str | None, str]:
    if not p.steps:
        return None, "no reasoning step to corrupt (the rationale is only the answer sentence)"
    if task == "number":
        spots = [(i, m) for i, s in enumerate(p.steps) for m in _NUMBER.finditer(s)]
        if spots and severe:
            steps = list(p.steps)
            for i, m in reversed(spots):  # from the end, so earlier match positions stay valid
                steps[i] = steps[i][:m.start()] + _changed_number(m.group(), rng) + steps[i][m.end():]
            return render(steps, p.seps, p.answer, p.before_answer), f"changed all {len(spots)} numbers of the steps"
        if spots:
            i, m = spots[rng.randrange(len(spots))]
            new = _changed_number(m.group(), rng)
            steps = list(p.steps)
            steps[i] = steps[i][:m.start()] + new + steps[i][m.end():]
            return render(steps, p.seps, p.answer, p.before_answer), f"step {i + 1}: {m.group()} → {new}"
    own = " ".join(p.steps)
    others = [d for d in donors if d.strip() and d.strip() != own.strip()]
    if not others:
        return None, "no number in the steps and no other rationale to borrow an unrelated justification from"
    donor = rng.choice(others)
    return f"{donor.strip()}{p.before_answer}{p.answer}", "steps replaced by another question's reasoning"


def style(p: Parsed, rng: random.Random, severe: bool = False) -> tuple[str | None, str]:
    if not p.steps:
        return None, "no reasoning step to rewrite"
    lines = [f"Step {i + 1}: {s}" for i, s in enumerate(p.steps)]
    return "\n".join(lines) + "\n" + p.answer, f"{len(p.steps)} step(s) as numbered lines"


def reasoning(rationale: str) -> str:
    """The steps of a rationale without its answer sentence (what `spurious` borrows as a donor)."""
    p = parse(rationale)
    return " ".join(p.steps) if p else ""


def make_variant(kind: str, rationale: str, task: str, seed: int, key: str, donors: tuple[str, ...] = (),
                 severity: str = "mild") -> Variant:
    """One variant of `rationale` (see the module docstring); `key` identifies the row (its question id)."""
    if kind not in KINDS:
        raise ValueError(f"unknown defect kind {kind!r}: choose from {', '.join(KINDS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: choose from {', '.join(SEVERITIES)}")
    p = parse(rationale)
    if p is None:
        return Variant(kind, None, "no 'The answer is X.' sentence to keep")
    rng, severe = _rng(seed, key, kind), severity == "severe"
    if kind == "spurious":
        text, note = spurious(p, rng, task, donors, severe)
    else:
        text, note = {"redundant": redundant, "jumping": jumping, "style": style}[kind](p, rng, severe)
    return Variant(kind, text, note)


def make_variants(rationale: str, task: str, seed: int, key: str, kinds=KINDS,
                  donors: tuple[str, ...] = (), severity: str = "mild") -> list[Variant]:
    return [make_variant(kind, rationale, task, seed, key, donors, severity) for kind in kinds]
