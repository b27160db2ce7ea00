"""The local terminal chat: the same core services, played at the keyboard.

The person at the keyboard is both the ward nurse raising requests and the outreach team
answering them: for the trial they hold every role in the escalation policy. Outbound messages
(the card in the outreach channel, direct messages, escalations) are printed as they go out.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from reviews import service
from reviews.context import Actor, Services
from reviews.messages import Message
from reviews.model import (
    CALLER_LABELS,
    CONCERN_LABELS,
    OUTCOME_LABELS,
    TRANSFER_DESTINATIONS,
    Caller,
    FormErrors,
    Outcome,
    ReviewForm,
    parse_reference,
    validate,
)
from reviews.notify import Route
from reviews.outbox import OutboundItem
from storage.database import DatabaseUnavailable
from storage.tables import Shift, Staff

SHELL_USER = Actor(platform="shell", user_id="you@shell.local", name="You (shell)")
SHELL_ROUTE = Route(platform="shell", outreach_channel="outreach", digest_channel="digest")

HELP = """Commands:
  raise                 raise a rapid review (the request form)
  open                  requests not yet closed
  ack REF               acknowledge (e.g. ack RR-0001, or ack 1)
  attend REF            you are on your way
  outcome REF           record the outcome and close
  cancel REF REASON     withdraw a request raised in error
  rota                  who holds each role now
  help, quit"""


class ShellSender:
    """Prints what would be posted in Slack or Teams."""

    def __init__(self, out: TextIO, lock: threading.Lock):
        self.out, self.lock = out, lock

    def deliver(self, item: OutboundItem) -> str | None:
        where = {"direct": "direct message", "thread": "thread"}.get(item.kind, "#" + item.address)
        with self.lock:
            self.out.write(f"\n  [{where}] {render(item.message)}\n")
            self.out.flush()
        return f"shell-{item.review_id}"


def render(message: Message) -> str:
    lines = [message.text]
    view = message.review
    if view is not None:
        lines.append(
            f"    {view.headline}  (NEWS2 {view.news2 if view.news2 is not None else '-'})"
        )
        lines.append(f"    {view.caller} · {view.concern_kind}: {view.concern}")
        lines.append(f"    {view.state_line}")
    if message.actions:
        labels = {
            "acknowledge": "ack",
            "attend": "attend",
            "record_outcome": "outcome",
            "cancel": "cancel",
        }
        lines.append("    buttons: " + "  ".join(f"[{labels.get(a, a)}]" for a in message.actions))
    return "\n".join(lines)


def put_keyboard_user_on_rota(services: Services, hours: int = 12) -> None:
    """For the trial, the person at the keyboard holds every policy role (unless someone does)."""
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        me = uow.rota.staff_by_email(SHELL_USER.user_id) or uow.rota.add_staff(
            Staff(name=SHELL_USER.name, email=SHELL_USER.user_id)
        )
        assert me.id is not None
        for role in services.policy.roles():
            if not uow.rota.shifts_at(role, now) and not uow.rota.covers_at(role, now):
                uow.session.add(
                    Shift(
                        role=role,
                        staff_id=me.id,
                        start=now,
                        end=now + timedelta(hours=hours),
                        source="shell",
                        imported_at=now,
                    )
                )


class Shell:
    def __init__(
        self, services: Services, read: Callable[[str], str], out: TextIO, lock: threading.Lock
    ):
        self.services, self.read, self.out, self.lock = services, read, out, lock

    def say(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def loop(self) -> None:
        self.say(HELP)
        while True:
            try:
                line = self.read("> ").strip()
            except (EOFError, KeyboardInterrupt):
                return
            if line in ("quit", "exit"):
                return
            if line:
                self.dispatch(line)

    def dispatch(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError:  # an unbalanced quote, as in "patient's fine"
            words = line.split()
        command, args = words[0].lower(), words[1:]
        actions: dict[str, Callable[[list[str]], None]] = {
            "raise": lambda _: self.raise_review(),
            "open": lambda _: self.show_open(),
            "ack": lambda a: self.change(a, service.acknowledge),
            "attend": lambda a: self.change(a, service.attend),
            "outcome": self.record_outcome,
            "cancel": self.cancel,
            "rota": lambda _: self.show_rota(),
        }
        action = actions.get(command)
        if action is None:
            self.say(HELP)
            return
        try:
            action(args)
        except service.ServiceError as error:
            self.say(str(error))
        except DatabaseUnavailable:
            self.say(
                f"The database is not answering: nothing was recorded. "
                f"{self.services.fallback_contact}"
            )

    def ask_choice(self, question: str, labels: dict[str, str]) -> str:
        options = list(labels)
        menu = "  ".join(f"[{n}] {labels[o]}" for n, o in enumerate(options, start=1))
        answer = self.read(f"{question} {menu}: ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        return answer

    def raise_review(self) -> None:
        form = ReviewForm(
            caller=self.ask_choice(
                "Who is raising it?", {c.value: label for c, label in CALLER_LABELS.items()}
            ),
            ward=self.read("Ward: "),
            bed=self.read("Bed: "),
            nhs_number=self.read("NHS number (optional): "),
            news2=self.read("NEWS2 score 0-20 (optional): "),
            concern_kind=self.ask_choice(
                "Kind of concern?", {k.value: label for k, label in CONCERN_LABELS.items()}
            ),
            concern=self.read("What worries you? "),
            callback_number="",
        )
        if form.caller in (Caller.PATIENT, Caller.FAMILY):
            form = ReviewForm(
                **{**form.__dict__, "callback_number": self.read("Call-back number: ")}
            )
        try:
            request = validate(form)
        except FormErrors as errors:
            for field, problem in errors.errors.items():
                self.say(f"  {field.replace('_', ' ')}: {problem}")
            self.say("Nothing was raised; type 'raise' to try again.")
            return
        try:
            result = service.raise_review(services=self.services, request=request, by=SHELL_USER)
        except DatabaseUnavailable:
            self.say(
                f"NOT RECORDED: the bot could not save this request. "
                f"{self.services.fallback_contact}"
            )
            return
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
        choice = self.ask_choice(
            "Outcome?", {o.value: label for o, label in OUTCOME_LABELS.items()}
        )
        try:
            outcome = Outcome(choice)
        except ValueError:
            raise service.ServiceError(
                "Choose an outcome by its number; nothing changed."
            ) from None
        detail = ""
        if outcome is Outcome.TRANSFER:
            detail = self.ask_choice("Transferred to?", {d: d for d in TRANSFER_DESTINATIONS})
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
        reason = " ".join(args[1:]) or self.read("Why cancel? ")
        result = service.cancel(
            services=self.services, review_id=review_id, by=SHELL_USER, reason=reason
        )
        self.say(result.note)

    def show_open(self) -> None:
        self.say(service.open_requests(services=self.services).text())

    def show_rota(self) -> None:
        from rotas.view import rota_lines

        for line in rota_lines(services=self.services, at=self.services.clock.now()):
            self.say("  " + line)
