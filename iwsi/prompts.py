"""Few-shot chain-of-thought prompts (pure: no torch).

A full prompt is `few_shot_prefix(task) + question_suffix(question)`; the model continues with
" <rationale> The answer is X." and generation is cut at the first string in STOP. Exemplars are
written for this project (not taken from any dataset), four per task kind, formatted exactly as
"Q: <question>\nA: <rationale> The answer is <X>.\n\n". Rationales never contain a blank line,
because a blank line ("\n\n") is where generation stops.

Question texts shown to the model use the same display helpers as the dataset loaders
(`with_choices`, `yesno_question`, `nli_question`), so exemplars and real questions look alike.
"""
from __future__ import annotations

# Cut generations here: "\n\n" ends an answer block; "\nQ:" catches a model that starts a new question
# after a single newline.
STOP = ("\n\n", "\nQ:")

YESNO_CHOICES = "Answer choices: A) yes; B) no"


def with_choices(question: str, options: list[tuple[str, str]]) -> str:
    """'Question Answer choices: A) x; B) y' — how multiple-choice questions are shown."""
    listed = "; ".join(f"{label}) {text}" for label, text in options)
    return f"{question.strip()} Answer choices: {listed}"


def yesno_question(question: str) -> str:
    """The paper shows yes/no questions as a two-way choice "A) yes; B) no"."""
    return f"{question.strip()} {YESNO_CHOICES}"


def nli_question(premise: str, hypothesis: str) -> str:
    return (f"Premise: {premise.strip()} Hypothesis: {hypothesis.strip()} Does the premise entail the "
            "hypothesis? Answer yes, no, or it is not possible to tell.")


# (question, reasoning, answer): the rationale shown is "<reasoning> The answer is <answer>."
EXEMPLARS: dict[str, list[tuple[str, str, str]]] = {
    "number": [
        ("Mia has 6 pencils. Her friend gives her 5 more pencils. How many pencils does Mia have now?",
         "Mia starts with 6 pencils and gets 5 more, so 6 + 5 = 11.", "11"),
        ("A farmer has 4 crates with 7 eggs in each crate. He breaks 3 of the eggs. How many eggs are left?",
         "There are 4 crates of 7 eggs, so 4 * 7 = 28. He breaks 3 of them, so 28 - 3 = 25.", "25"),
        ("Leo has 18 stickers. He shares them equally among 3 friends. How many stickers does each friend get?",
         "18 stickers are shared equally among 3 friends, so 18 / 3 = 6.", "6"),
        ("Sara had 15 shells. She gave 6 shells to her brother and then found 4 more on the beach. "
         "How many shells does Sara have now?",
         "Sara gave away 6 of her 15 shells, so 15 - 6 = 9. Then she found 4 more, so 9 + 4 = 13.", "13"),
    ],
    "yesno": [
        (yesno_question("Can penguins be found living in the wild in Antarctica?"),
         "Several penguin species, such as the emperor penguin, breed on the ice of Antarctica.", "yes"),
        (yesno_question("Would a week be enough time to read every book in a large city library?"),
         "A large city library holds hundreds of thousands of books. Even a fast reader finishes only a "
         "few books a day, so a week allows a few dozen books at most.", "no"),
        (yesno_question("Is it possible to see the Moon during the daytime?"),
         "The Moon is bright enough to be seen whenever it is above the horizon, and for part of each "
         "month it is above the horizon during the day.", "yes"),
        (yesno_question("Would a person need a warm coat on a typical summer afternoon in the Sahara desert?"),
         "Summer afternoons in the Sahara are very hot, often above 40 degrees Celsius. A warm coat is "
         "worn to keep warm in cold weather.", "no"),
    ],
    "choice": [
        (with_choices("Which of these is most likely to melt on a hot day?",
                      [("A", "a stone"), ("B", "an ice cube"), ("C", "a metal spoon"), ("D", "a glass bottle")]),
         "Ice melts above 0 degrees Celsius, and a hot day is much warmer than that. Stone, metal and "
         "glass need far higher temperatures to melt.", "B"),
        (with_choices("A shop sells pens at 3 dollars each. How many dollars do 8 pens cost?",
                      [("A", "11"), ("B", "21"), ("C", "22"), ("D", "24"), ("E", "27")]),
         "Each pen costs 3 dollars, so 8 pens cost 8 * 3 = 24 dollars.", "D"),
        (with_choices("What do plants mainly get from sunlight?",
                      [("A", "energy to make food"), ("B", "water to grow"), ("C", "soil to stand in"),
                       ("D", "air to breathe")]),
         "Plants use the energy in sunlight to turn water and carbon dioxide into sugar, which is their food.", "A"),
        (with_choices("A train travels 60 km in one hour. How far does it travel in 2.5 hours at the same speed?",
                      [("A", "120 km"), ("B", "130 km"), ("C", "150 km"), ("D", "180 km"), ("E", "250 km")]),
         "The train covers 60 km each hour, so in 2.5 hours it covers 60 * 2.5 = 150 km.", "C"),
    ],
    "nli": [
        (nli_question("The bakery on Elm Street opens at 7 a.m. every weekday and closes at 3 p.m.",
                      "The bakery is open at noon on Tuesdays."),
         "Tuesday is a weekday, and noon is between 7 a.m. and 3 p.m., so the bakery is open then.", "yes"),
        (nli_question("Maria finished the city marathon in just under four hours, her best time so far.",
                      "Maria had never run a marathon before."),
         "The premise says this was her best time so far, so she had run marathons before.", "no"),
        (nli_question("The town museum added a new wing in 2015 to display modern sculpture.",
                      "The new wing was paid for by the town council."),
         "The premise says when the wing was added and what it shows, but nothing about who paid for it.",
         "it is not possible to tell"),
        (nli_question("Tomas Vell (born 1979) is a Danish cyclist who won two national road race titles.",
                      "Tomas Vell was born in the 1970s."),
         "He was born in 1979, and 1979 is in the 1970s.", "yes"),
    ],
}


def rationale_text(reasoning: str, answer: str) -> str:
    """'<reasoning> The answer is <answer>.' — the one rationale format every part of the project uses."""
    reasoning = reasoning.strip()
    if reasoning and not reasoning.endswith((".", "!", "?")):
        reasoning += "."  # GSM8K solution lines often end without a full stop
    return f"{reasoning} The answer is {answer}." if reasoning else f"The answer is {answer}."


def few_shot_prefix(task: str) -> str:
    """The shared few-shot prefix for a task kind: 'Q: ..\\nA: .. The answer is X.\\n\\n' x 4."""
    if task not in EXEMPLARS:
        raise ValueError(f"unknown task {task!r}: expected one of {tuple(EXEMPLARS)}")
    return "".join(f"Q: {q}\nA: {rationale_text(r, a)}\n\n" for q, r, a in EXEMPLARS[task])


def question_suffix(question: str) -> str:
    return f"Q: {question.strip()}\nA:"


def format_rationale_target(rationale: str) -> str:
    """Training target that follows a prompt: ' <rationale>\\n\\n'.

    The trailing blank line teaches the fine-tuned model to stop exactly where generation is cut.
    """
    return f" {rationale.strip()}\n\n"
