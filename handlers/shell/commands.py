"""The local terminal chat: the same core services, played at the keyboard.

The person at the keyboard is both the ward nurse raising requests and the outreach team
answering them: for the trial they hold every role in the escalation policy. Outbound messages
(the card in the outreach channel, direct messages, escalations) are printed as they go out.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from handlers.shell.checkin import checkin, todays_checkins
from handlers.shell.forms import Answers, Cancelled, Question, fill, ward_question
from handlers.shell.terminal import Terminal
from handlers.shell.trial import SHELL_USER
from reviews import service
from reviews.context import Services
from reviews.cover import record_cover
from reviews.model import (
    CALLER_LABELS,
    CONCERN_LABELS,
    OUTCOME_LABELS,
    TRANSFER_DESTINATIONS,
    Action,
    Caller,
    FormErrors,
    Outcome,
    ReviewForm,
    parse_reference,
    validate,
    validate_outcome,
    validate_reason,
)
from reviews.wards import Wards
from storage.database import DatabaseUnavailable

HELP = """Commands:
  raise                    raise a rapid review (a few questions; Ctrl-C cancels)
  checkin                  record a patient's daily check-in (how they feel today)
  checkins [WARD]          the ward's check-ins today
  open                     requests not yet closed
  ack REF                  acknowledge a request, e.g. ack RR-0001 or ack 1
  attend REF               say you are on your way
  outcome REF              record the outcome and close the request
  cancel REF [REASON]      withdraw a request raised in error
  rota                     who holds each role now
  cover ROLE [until TIME]  hold a role yourself, e.g. cover outreach until 20:00
  help, quit               (Ctrl-D quits too; the up arrow recalls a command)"""


def review_check(field: str) -> Callable[[Answers], str | None]:
    """The core's own verdict on one answer of the request form, given the answers so far."""

    def check(answers: Answers) -> str | None:
        try:
            validate(ReviewForm(**answers))
        except FormErrors as errors:
            return errors.errors.get(field)
        return None

    return check


def _asks_callback(answers: Answers) -> bool:
    return answers.get("caller") in (Caller.PATIENT, Caller.FAMILY)


def review_form(wards: Wards) -> tuple[Question, ...]:
    """The request form's questions; the ward offers the wards file's (a ward not listed may
    still be typed, as on Slack and Teams)."""
    return (
        Question(
            "caller",
            "Who is raising it?",
            {c.value: label for c, label in CALLER_LABELS.items()},
            review_check("caller"),
        ),
        ward_question("Ward:", wards, review_check("ward")),
        Question("bed", "Bed:", check=review_check("bed")),
        Question("nhs_number", "NHS number (optional):", check=review_check("nhs_number")),
        Question("news2", "NEWS2 score 0-20 (optional):", check=review_check("news2")),
        Question(
            "concern_kind",
            "Kind of concern?",
            {k.value: label for k, label in CONCERN_LABELS.items()},
            review_check("concern_kind"),
        ),
        Question("concern", "What worries you?", check=review_check("concern")),
        Question(
            "callback_number",
            "Call-back number:",
            check=review_check("callback_number"),
            when=_asks_callback,
        ),
    )


def outcome_check(field: str) -> Callable[[Answers], str | None]:
    def check(answers: Answers) -> str | None:
        try:
            validate_outcome(*(answers.get(f, "") for f in ("outcome", "destination", "note")))
        except FormErrors as errors:
            return errors.errors.get(field)
        return None

    return check


def reason_check(answers: Answers) -> str | None:
    try:
        validate_reason(answers["reason"])
    except FormErrors as errors:
        return errors.errors.get("reason")
    return None


def _transfer(answers: Answers) -> bool:
    return answers["outcome"] == Outcome.TRANSFER


OUTCOME_FORM = (
    Question(
        "outcome",
        "Outcome?",
        {o.value: label for o, label in OUTCOME_LABELS.items()},
        outcome_check("outcome"),
    ),
    Question(
        "destination",
        "Transferred to?",
        {d: d for d in TRANSFER_DESTINATIONS},
        outcome_check("destination"),
        when=_transfer,
    ),
    Question(
        "note",
        "Note (optional):",
        check=outcome_check("note"),
        when=lambda answers: not _transfer(answers),
    ),
)
REASON_FORM = (Question("reason", "Why cancel?", check=reason_check),)
# The chat platforms' words for cover, as a gap warning may have told the person to type.
COVER_ALIASES = re.compile(r"^(/rapidreview\s+)?(rota\s+)?cover\b", re.IGNORECASE)


class Shell:
    def __init__(self, services: Services, terminal: Terminal):
        self.services, self.terminal = services, terminal

    def say(self, text: str) -> None:
        self.terminal.say(text)

    def loop(self) -> None:
        self.say(HELP)
        while True:
            try:
                line = self.terminal.ask("> ", remember=True).strip()
            except (EOFError, KeyboardInterrupt):
                self.say("")  # leave the terminal's next prompt on a line of its own
                return
            if line.lower() in ("quit", "exit"):
                return
            if not line:
                continue
            try:
                self.dispatch(line)
            except KeyboardInterrupt:  # Ctrl-C while the bot was working, not waiting
                self.say("\nInterrupted. Type open to see what was recorded.")

    def commands(self) -> dict[str, Callable[[list[str]], None]]:
        return {
            "raise": lambda _: self.raise_review(),
            "checkin": lambda _: self.say(checkin(self.services, self.terminal)),
            "checkins": lambda a: self.say(todays_checkins(self.services, a)),
            "open": lambda _: self.show_open(),
            "ack": lambda a: self.change(a, service.acknowledge),
            "attend": lambda a: self.change(a, service.attend),
            "outcome": self.record_outcome,
            "cancel": self.cancel,
            "rota": lambda _: self.show_rota(),
            "cover": self.cover,
            "help": lambda _: self.say(HELP),
        }

    def dispatch(self, line: str) -> None:
        line = COVER_ALIASES.sub("cover", line)
        try:
            words = shlex.split(line)
        except ValueError:  # an unbalanced quote, as in "patient's fine"
            words = line.split()
        name, args = words[0].lower(), words[1:]
        action = self.commands().get(name)
        if action is None:
            self.say(f"Unknown command {name!r}. Type help to see the commands.")
            return
        try:
            action(args)
        except Cancelled:
            self.say("Cancelled: nothing was recorded.")
        except service.ServiceError as error:
            self.say(str(error))
        except DatabaseUnavailable:
            self.say(
                "NOT RECORDED: the database is not answering, so nothing was saved. "
                f"{self.services.fallback_contact}"
            )

    def raise_review(self) -> None:
        try:
            answers = fill(self.terminal, review_form(self.services.wards))
        except Cancelled:
            self.say("Cancelled: nothing was raised.")
            return
        request = validate(ReviewForm(**answers))  # every answer has passed its own check
        result = service.raise_review(services=self.services, request=request, by=SHELL_USER)
        self.say(
            f"{result.reference} raised. If the patient worsens before the outreach team "
            f"arrives: {self.services.fallback_contact}"
        )

    def reference(self, args: list[str]) -> int:
        review_id = parse_reference(args[0]) if args else None
        if review_id is None:
            raise service.ServiceError("Which request? e.g. RR-0001")
        return review_id

    def change(self, args: list[str], action: Callable[..., service.Result]) -> None:
        result = action(services=self.services, review_id=self.reference(args), by=SHELL_USER)
        self.say(result.note)

    def record_outcome(self, args: list[str]) -> None:
        review_id = self.reference(args)
        service.check_may(
            services=self.services, review_id=review_id, by=SHELL_USER, action=Action.RECORD_OUTCOME
        )
        answers = fill(self.terminal, OUTCOME_FORM)
        outcome, detail = validate_outcome(
            answers["outcome"], answers.get("destination", ""), answers.get("note", "")
        )
        result = service.record_outcome(
            services=self.services,
            review_id=review_id,
            by=SHELL_USER,
            outcome=outcome,
            detail=detail,
        )
        self.say(result.note)

    def cancel(self, args: list[str]) -> None:
        review_id = self.reference(args)
        service.check_may(
            services=self.services, review_id=review_id, by=SHELL_USER, action=Action.CANCEL
        )
        reason = " ".join(args[1:]) or fill(self.terminal, REASON_FORM)["reason"]
        result = service.cancel(
            services=self.services, review_id=review_id, by=SHELL_USER, reason=reason
        )
        self.say(result.note)

    def cover(self, args: list[str]) -> None:
        """cover ROLE [EMAIL] [until TIME]: without an email, the person at the keyboard."""
        words = [w for w in args if not w.startswith("@")]  # "@person", as the chat says it
        until = words.index("until") if "until" in words else len(words)
        if until == 0:
            raise service.ServiceError("Which role? e.g. cover outreach until 20:00")
        person = words[1] if until > 1 else SHELL_USER.user_id
        said = record_cover(
            services=self.services,
            role=words[0],
            covering_platform="shell",
            covering_user_id=person.lower(),
            by=SHELL_USER,
            until_text=" ".join(words[until + 1 :]) or None,
        )
        self.say(said)

    def show_open(self) -> None:
        self.say(service.open_requests(services=self.services).text())

    def show_rota(self) -> None:
        from rotas.view import rota_lines

        for line in rota_lines(services=self.services, at=self.services.clock.now()):
            self.say("  " + line)
