"""What Slack or Teams would show, printed in the terminal instead."""

from __future__ import annotations

import re

from handlers.shell.terminal import Terminal
from reviews.messages import Message
from reviews.outbox import OutboundItem

BUTTONS = {
    "acknowledge": "ack",
    "attend": "attend",
    "record_outcome": "outcome",
    "cancel": "cancel",
}
# The chat platforms' cover command, as the shell types it.
SLASH_COVER = re.compile(r"/rapidreview rota cover (\S+) @person until TIME")


class ShellSender:
    """Prints what would be posted in Slack or Teams, above the prompt."""

    def __init__(self, terminal: Terminal):
        self.terminal = terminal

    def deliver(self, item: OutboundItem) -> str | None:
        where = {"direct": "direct message", "thread": "thread"}.get(item.kind, "#" + item.address)
        self.terminal.background(f"  [{where}] {render(item.message)}")
        return f"shell-{item.review_id}"


def render(message: Message) -> str:
    lines = [SLASH_COVER.sub(r"cover \1 until TIME", message.text)]
    view = message.review
    if view is not None:
        news2 = view.news2 if view.news2 is not None else "-"
        nhs = f"  NHS {view.nhs_last4}" if view.nhs_last4 else ""
        lines.append(f"    {view.headline}  (NEWS2 {news2}){nhs}")
        lines.append(f"    {view.caller} · {view.concern_kind}: {view.concern}")
        lines.append(f"    {view.state_line}")
    if message.actions:
        buttons = "  ".join(f"[{BUTTONS.get(a, a)}]" for a in message.actions)
        lines.append("    buttons: " + buttons)
    return "\n".join(lines)
