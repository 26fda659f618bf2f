"""Answer extraction and comparison (pure: no torch).

Reads a model's (or a human's) rationale text and returns the normalised final answer:
- number: canonical decimal string ("5", "-3", "0.25", "1234")
- yesno:  "yes" / "no"
- choice: an option letter "A".."E"
- nli:    "yes" / "no" / "it is not possible to tell"

Only the LAST "the answer is ..." counts. There is deliberately no fallback to "the last number in
the text": a majority vote over such guesses would reward rambling outputs.

>>> extract_answer("3 + 4 = 7. The answer is 7.", "number")
'7'
>>> extract_answer("It costs $1,250.00 in total. The answer is $1,250.00.", "number")
'1250'
>>> extract_answer("So the answer is B) no.", "yesno")
'no'
>>> extract_answer("The answer is (C).", "choice")
'C'
>>> extract_answer("The answer is neutral.", "nli")
'it is not possible to tell'
>>> extract_answer("I think it is 7.", "number") is None
True
>>> is_correct("5.0", "5", "number")
True
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NOT_SURE = "it is not possible to tell"
NLI_LABELS = ("yes", "no", NOT_SURE)
CHOICE_LETTERS = "ABCDE"

_ANSWER_IS = re.compile(r"the\s+answer\s+is\b\s*:?", re.IGNORECASE)
# A sentence ends at a newline or at a period/!/? followed by space or end ("5.5" is not an end).
_SENTENCE_END = re.compile(r"\n|[.!?](?=\s|$)")
_NUMBER_TOKEN = re.compile(r"[-+−]?\s?\$?\s?[-+]?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)")
_NUMBER_FULL = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?")
_LETTER = re.compile(r"(?i:option|choice)?\s*(?:\(([A-Ea-e])\)|([A-Ea-e])\)|([A-E])(?=[\s.,:;]|$))")
_NLI_WORDS = (
    (re.compile(r"not\s+possible|impossible|can ?not|can't|cannot|unknown|undetermined|maybe|neutral"
                r"|not\s+enough|unclear|uncertain"), NOT_SURE),
    (re.compile(r"\b(?:yes|entailment|entails?|true)\b"), "yes"),
    (re.compile(r"\b(?:no|contradiction|contradicts?|false)\b"), "no"),
)


def normalize_number(s: object) -> str | None:
    """Canonical string for a number written like "$1,234.50", "-3", "5.0", "7." (None if not one).

    >>> [normalize_number(x) for x in ["5.0", "$1,234", "-3", "0.250", "7.", "abc", 12.0]]
    ['5', '1234', '-3', '0.25', '7', None, '12']
    """
    if isinstance(s, bool) or s is None:
        return None
    text = str(s).strip().replace("−", "-").replace(" ", "")
    text = re.sub(r"^([+-]?)\$", r"\1", text).lstrip("$")  # "$5", "-$5", "$-5"
    text = text.removesuffix("%").removesuffix(".")
    if not text or not _NUMBER_FULL.fullmatch(text) or not any(c.isdigit() for c in text):
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return _canonical(value)


def _canonical(value: Decimal) -> str:
    # Decimal, not float, so that long integers and decimals are never truncated.
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _answer_span(text: str) -> str | None:
    """The sentence following the last "the answer is", or None when there is none."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():].lstrip()
    end = _SENTENCE_END.search(rest)
    return rest[: end.start()] if end else rest


def _extract_number(span: str) -> str | None:
    # "The answer is 3 + 4 = 7" -> take what follows the last "=".
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    token = _NUMBER_TOKEN.search(span)
    if not token:
        return None
    number = normalize_number(token.group(0))
    fraction = re.match(r"\s*/\s*(\d+)(?![\d.])", span[token.end():])
    if number is not None and fraction:  # "3/4" is 0.75, not 3
        denominator = int(fraction.group(1))
        return _canonical(Decimal(number) / denominator) if denominator else None
    return number


def _extract_letter(span: str) -> str | None:
    match = _LETTER.match(span.strip())
    if not match:
        return None
    return next(g for g in match.groups() if g).upper()


def _extract_yesno(span: str) -> str | None:
    word = re.search(r"\b(yes|no|true|false)\b", span.lower())
    if word:
        return {"true": "yes", "false": "no"}.get(word.group(1), word.group(1))
    letter = _extract_letter(span)  # the paper's "A) yes; B) no" format
    return {"A": "yes", "B": "no"}.get(letter or "")


def _extract_nli(span: str) -> str | None:
    low = span.lower()
    for pattern, label in _NLI_WORDS:
        if pattern.search(low):
            return label
    return None


_EXTRACTORS = {"number": _extract_number, "yesno": _extract_yesno, "choice": _extract_letter, "nli": _extract_nli}


def extract_answer(text: str, task: str) -> str | None:
    """Normalised final answer of `text` for `task`, or None if it has none. Never raises on text."""
    if task not in _EXTRACTORS:
        raise ValueError(f"unknown task {task!r}: expected one of {tuple(_EXTRACTORS)}")
    if not isinstance(text, str):
        return None
    span = _answer_span(text)
    if span is None:
        return None
    span = span.strip().strip("*_`\"'")  # markdown or quotes around the answer
    return _EXTRACTORS[task](span)


def normalize_gold(gold: object, task: str) -> str | None:
    """Normalise a gold label the same way as extracted answers (None if it does not parse).

    >>> [normalize_gold(x, t) for x, t in [(True, "yesno"), ("b", "choice"), ("e", "nli"), ("1,000", "number")]]
    ['yes', 'B', 'yes', '1000']
    """
    if task == "number":
        return normalize_number(gold)
    if isinstance(gold, bool):
        return ("yes" if gold else "no") if task == "yesno" else None
    text = str(gold).strip()
    if task == "nli":
        short = {"e": "yes", "n": NOT_SURE, "c": "no", "entailment": "yes", "neutral": NOT_SURE, "contradiction": "no"}
        return short.get(text.lower()) or _extract_nli(text)
    if task == "choice":
        return text.upper() if len(text) == 1 and text.upper() in CHOICE_LETTERS else _extract_letter(text)
    if task == "yesno":
        return _extract_yesno(text)
    raise ValueError(f"unknown task {task!r}: expected one of {tuple(_EXTRACTORS)}")


def is_correct(answer: str | None, gold: str | None, task: str) -> bool | None:
    """Whether `answer` matches `gold` (None when the gold is unknown, False when no answer)."""
    if gold is None:
        return None
    if answer is None:
        return False
    if task == "number":
        a, g = normalize_number(answer), normalize_number(gold)
        return a is not None and a == g
    return normalize_gold(answer, task) == normalize_gold(gold, task)
