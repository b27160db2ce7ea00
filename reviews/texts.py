"""What a text or page to on-call staff says, and where it goes.

A text names the reference, ward, bed and urgency, says the request is not yet acknowledged and
how to acknowledge it: never an NHS number, a name or a call-back number (a pager screen and a
phone's lock screen are read by anyone nearby). It fits one SMS, 160 GSM-7 characters, by
shortening the ward name if it must.
"""

from __future__ import annotations

import unicodedata

from reviews.model import format_reference
from storage.tables import Review, Staff

SMS_LENGTH = 160
PAGER, NOTIFY = "pager", "notify"  # outbox platforms: the trust's paging gateway, GOV.UK Notify
PLATFORM_NAMES = {"slack": "Slack", "teams": "Teams", "shell": "the rapidreview shell"}
# GSM 03.38's basic set: a text of these alone goes as one 160-character SMS. One character
# outside it (a curly quote, an emoji) makes the whole text UCS-2, where an SMS holds only 70.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# What word processors and phones put in place of plain punctuation.
LOOKALIKES = str.maketrans({"–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "..."})


def destination(person: Staff, configured: tuple[str, ...]) -> tuple[str, str] | None:
    """(outbox platform, number) for one person, or None if they cannot be texted.

    A pager id goes through the gateway; a mobile goes through Notify, or through the gateway
    when only the gateway is configured (CONTRACT.md: `to` is a pager or a mobile).
    """
    if person.pager and PAGER in configured:
        return PAGER, person.pager
    if person.mobile and NOTIFY in configured:
        return NOTIFY, person.mobile
    if person.mobile and PAGER in configured:
        return PAGER, person.mobile
    return None


def text_for(review: Review, level: int, platforms: tuple[str, ...]) -> str:
    """The text for `review` at escalation `level`; one SMS unless the urgency alone is long."""
    reference = format_reference(review.id or 0)
    where = "in " + " or ".join(PLATFORM_NAMES.get(p, p) for p in platforms) if platforms else ""
    head = f"{reference} {review.urgency.upper()} rapid review, "
    bed = f" bed {gsm(review.bed)}" if review.bed else ""
    # The first call is the one the chat message made; later ones are named as the chat names
    # them ("Escalation level 2"), so that a text and its direct message read as one.
    named = f" (escalation level {level})" if level else ""
    tail = f": NOT YET ACKNOWLEDGED{named}. Acknowledge {where} now.".replace("  ", " ")
    room = SMS_LENGTH - len(gsm(head)) - len(bed) - len(tail)
    ward = gsm(review.ward)
    if len(ward) > room:
        ward = ward[: max(room - 1, 1)].rstrip() + "."
    return gsm(head) + ward + bed + tail


def gsm(text: str) -> str:
    """`text` in the GSM basic set: accents the set lacks are dropped, anything else is '?'."""
    plain = []
    for char in text.translate(LOOKALIKES):
        if char in GSM_BASIC:
            plain.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        plain.append(base if base and all(c in GSM_BASIC for c in base) else "?")
    return "".join(plain)
