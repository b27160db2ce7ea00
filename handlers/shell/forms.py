"""Forms at the keyboard: a list of questions, each answer checked as it is typed.

A form is declared as a tuple of Question; `fill` asks them in order. An answer the check
refuses is explained in one line and the same question asked again, in the same words; nothing
typed before it is lost. Ctrl-C or Ctrl-D anywhere in a form cancels the whole form. The checks
are the core's own rules (reviews.model), so the shell never disagrees with Slack or Teams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from handlers.shell.terminal import Terminal
from reviews.wards import Wards

Answers = dict[str, str]
# The answers so far, this one included -> what is wrong with this one, or None.
Check = Callable[[Answers], str | None]


class Cancelled(Exception):
    """The person pressed Ctrl-C or Ctrl-D in the middle of a form."""


@dataclass(frozen=True)
class Question:
    field: str
    text: str  # as the person reads it: "Who is raising it?"
    choices: Mapping[str, str] | None = None  # value -> label, offered as [1] label ...
    check: Check | None = None
    when: Callable[[Answers], bool] | None = None  # asked only when this says so
    # Offered by name only, never by a menu number: a ward's own name has numbers in it
    # ("Ward 12"), and "12" must never pick the twelfth ward on the list.
    named: bool = False
    # Other words that name a choice, lower case -> value: a ward's code ("ward-7", as in the
    # public page's address), so it records the ward's name rather than a ward of its own.
    aliases: Mapping[str, str] | None = None

    def prompt(self) -> str:
        if not self.choices:
            return f"{self.text} "
        if self.named:
            listed = ", ".join(self.choices.values())
            return f"{self.text.rstrip(':')} ({listed}, or another): "
        menu = "  ".join(f"[{n}] {label}" for n, label in enumerate(self.choices.values(), 1))
        return f"{self.text} {menu}: "

    def value(self, typed: str) -> str:
        """A choice's value from its number or its label (a named question's: from its label,
        or a word only its label has, "12" for "Ward 12 (Elderly Care)"); other answers as
        typed."""
        typed = typed.strip()
        if not self.choices:
            return typed
        values = list(self.choices)
        if self.aliases and typed.lower() in self.aliases:
            return self.aliases[typed.lower()]
        if self.named:
            having = [
                value for value, label in self.choices.items() if typed.lower() in _words(label)
            ]
            if len(having) == 1 and typed:
                return having[0]
        elif typed.isascii() and typed.isdigit() and 1 <= int(typed) <= len(values):
            return values[int(typed) - 1]
        by_label = {label.lower(): value for value, label in self.choices.items()}
        # A name before its brackets finds its ward only when no other ward's is the same:
        # "Ward 7" of a trust with a Ward 7 at each of two hospitals names neither.
        plain = [(_plain(label), value) for value, label in self.choices.items()]
        shared = {name for name, _ in plain if sum(name == other for other, _ in plain) > 1}
        for name, value in plain:
            if name not in shared:
                by_label.setdefault(name, value)
        return by_label.get(typed.lower(), typed)

    def refusal(self, problem: str) -> str:
        if self.choices and len(self.choices) > 1 and not self.named:
            return f"{problem} Type a number from 1 to {len(self.choices)}."
        return problem


def ward_question(text: str, wards: Wards, check: Check | None = None) -> Question:
    """The ward, offered by name from the wards file (none: typed freely), found by its name, its
    name without the description in brackets, a word only its name has, or its code: the same
    ward whichever the forms, and `checkins WARD`, were given."""
    return Question(
        "ward",
        text,
        {w.name: w.name for w in wards} or None,
        check,
        named=True,
        aliases={w.code.lower(): w.name for w in wards},
    )


def _plain(label: str) -> str:
    """A ward's own name, without what follows it in brackets: "Ward 12" of "Ward 12 (Elderly
    Care)" (a description's words and numbers name no ward: "Level 4" is not Ward 4)."""
    return label.split("(")[0].strip().lower()


def _words(label: str) -> set[str]:
    return set(_plain(label).split())


def fill(terminal: Terminal, questions: tuple[Question, ...]) -> Answers:
    """Ask every question that applies; the checked answers. Cancelled on Ctrl-C or Ctrl-D."""
    answers: Answers = {}
    for question in questions:
        if question.when is not None and not question.when(answers):
            continue
        while True:
            try:
                typed = terminal.ask(question.prompt())
            except (EOFError, KeyboardInterrupt):
                terminal.say("")  # the prompt line was left open
                raise Cancelled from None
            answers[question.field] = question.value(typed)
            problem = question.check(answers) if question.check else None
            if problem is None:
                break
            terminal.say("  " + question.refusal(problem))
    return answers
