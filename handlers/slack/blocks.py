"""Block Kit for a neutral Message: the request card, its buttons, and plain lines.

Only what a ReviewView carries is shown, so no card can show a full NHS number or a call-back
number. Every button's value is the review id; its action_id says what it does.
"""

from __future__ import annotations

from typing import Any

from reviews.messages import Message, ReviewView
from reviews.model import Action

ACTION_PREFIX = "review_"
STYLES = {Action.ACKNOWLEDGE: "primary", Action.CANCEL: "danger"}

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; people's words must show as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:150], "emoji": True}


# Slack refuses (invalid_blocks) a section whose text is over 3,000 characters and a message of
# over 50 blocks: https://docs.slack.dev/reference/block-kit/blocks/section-block,
# https://docs.slack.dev/reference/block-kit/blocks. A message's blocks are all it shows; its
# top-level text is only what notifications say.
SECTION_CHARS = 3000
MESSAGE_BLOCKS = 50
# And a message whose blocks hold more than about 12,000 characters of text in all, each within
# its own limit: undocumented, refused as msg_blocks_too_long (Slack's staff in
# https://github.com/slackapi/bolt-js/issues/2509; refused at 11,341 in /issues/2867).
MESSAGE_CHARS = 10000


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text[:SECTION_CHARS])}


def sections(text: str, most: int = MESSAGE_BLOCKS, cut: str | None = None) -> list[Block]:
    """`text` (already escaped) as sections of whole lines, each within Slack's 3,000
    characters, so that a long text (a big trust's digest) shows to its last line rather than
    being cut at the first section's end. A line longer than a section is split at a space.
    At most `most` sections and MESSAGE_CHARS in all: a text longer still is cut at a line's
    end, and its last section says where to read all of it (`cut`, by default CUT)."""
    cut = cut or CUT
    chunks: list[str] = []
    for line in text.split("\n"):
        while len(line) > SECTION_CHARS:
            at = line.rfind(" ", 0, SECTION_CHARS) + 1 or SECTION_CHARS
            chunks.append(line[:at])
            line = line[at:]
        if chunks and len(chunks[-1]) + 1 + len(line) <= SECTION_CHARS:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    # A section of blank lines alone is refused as one of no text.
    chunks = [chunk for chunk in chunks if chunk.strip()] or [text]
    if len(chunks) <= most and sum(map(len, chunks)) <= MESSAGE_CHARS:
        return [section(chunk) for chunk in chunks]
    # Too long for one message: whole lines while they fit, then where to read the rest.
    room, kept = MESSAGE_CHARS - len(cut), []
    for chunk in chunks[: most - 1]:
        if len(chunk) > room:
            head = chunk[:room].rsplit("\n", 1)[0] if "\n" in chunk[:room] else ""
            kept += [head] if head.strip() else []
            break
        kept.append(chunk)
        room -= len(chunk)
    return [section(chunk) for chunk in kept] + [section(cut)]


# The last section of a text too long for one Slack message (the digest of a trust of hundreds
# of wards). A command's answer is text, not blocks, and holds all of it.
CUT = (
    "_…cut here: the rest is too long for one Slack message. "
    "A manager can read the whole digest with `/rapidreview digest`._"
)


def render(message: Message) -> list[Block]:
    """The blocks for `message`: its text, the review card if any, then its buttons."""
    if message.review is None:
        blocks = sections(escape(message.text))
    else:
        blocks = card_blocks(message.review)
        if message.text and not message.text.startswith("Rapid review "):
            blocks[:0] = sections(escape(message.text), MESSAGE_BLOCKS - len(blocks) - 1)
    if message.review is not None and message.actions:
        blocks.append(buttons(message.review.review_id, message.actions))
    return blocks


def card_blocks(view: ReviewView) -> list[Block]:
    fields = [
        mrkdwn(
            f"*Ward / bed*\n{escape(view.ward)}" + (f" / {escape(view.bed)}" if view.bed else "")
        ),
        mrkdwn(
            f"*Urgency*\n{view.urgency.capitalize()}"
            + (f" (NEWS2 {view.news2})" if view.news2 is not None else "")
        ),
        mrkdwn(f"*Raised by*\n{escape(view.caller)}"),
        mrkdwn(f"*Concern*\n{escape(view.concern_kind)}"),
    ]
    if view.nhs_last4:
        fields.append(mrkdwn(f"*NHS number*\n{view.nhs_last4}"))
    return [
        {"type": "header", "text": plain(f"Rapid review {view.headline}")},
        {"type": "section", "fields": fields},
        section(f">{escape(view.concern)}"),
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    f"*{view.state.capitalize()}* · "
                    f"{escape(view.state_line)} · raised "
                    f"{view.raised_at}"
                )
            ],
        },
    ]


def buttons(review_id: int, actions: tuple[str, ...]) -> Block:
    elements = []
    for name in actions:
        action = Action(name)
        button: dict[str, Any] = {
            "type": "button",
            "action_id": ACTION_PREFIX + action.value,
            "text": plain(action.label),
            "value": str(review_id),
        }
        if action in STYLES:
            button["style"] = STYLES[action]
        elements.append(button)
    return {"type": "actions", "block_id": f"review_actions_{review_id}", "elements": elements}
