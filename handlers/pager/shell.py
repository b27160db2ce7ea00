"""The local shell trial's stand-in for GOV.UK Notify: a text is printed in the terminal."""

from __future__ import annotations

from handlers.shell.terminal import Terminal
from reviews.context import Services
from reviews.outbox import OutboundItem
from reviews.texts import NOTIFY
from storage.tables import Staff

# Ofcom's drama range: a number that is nobody's phone.
TRIAL_MOBILE = "+447700900000"


class ShellTextSender:
    """Prints each text as the bleep holder's phone would show it, above the prompt."""

    def __init__(self, terminal: Terminal):
        self.terminal = terminal

    def deliver(self, item: OutboundItem) -> str | None:
        self.terminal.background(f"  [text message to {item.address}] {item.message.text}")
        return f"shell-text-{item.review_id}"


def give_keyboard_user_a_phone(services: Services, email: str) -> None:
    """The person at the keyboard carries the trial's phone, so texts have somewhere to go."""
    if NOTIFY not in services.texting:
        return
    with services.db.unit_of_work() as uow:
        person: Staff | None = uow.rota.staff_by_email(email)
        if person is not None and not (person.mobile or person.pager):
            person.mobile = TRIAL_MOBILE
