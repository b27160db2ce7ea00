"""The public page's request form (CONTRACT.md "the public pages"): what a patient or family
types, and its rules. Messages are in plain words and say how to fix each field."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from reviews.model import Caller, ConcernKind, FormErrors, Source, ValidRequest, clean_text
from reviews.text import LONG_NUMBER

# A UK number once spaces, dashes and brackets are gone: 0 and 9 or 10 digits, or +44 and 9-10.
UK_PHONE = re.compile(r"^(?:0[0-9]{9,10}|\+44[0-9]{9,10})$")
PHONE_EXAMPLE = "07700 900 982"
# Numbers that cost the caller more than a call (Ofcom): premium rate (09), personal numbering
# (070, a favourite of fraud) and service-charged 084 and 087. A stranger's call-back number is
# dialled by the outreach team, so the public pages take none of them: toll fraud in the NHS's
# name, at a rate of five an hour per address.
CHARGED = re.compile(r"^(?:0|\+44)(?:9|70|84|87)")
# What a bed is called, in any script: "12", "Side room 3", "Bay 2/5", "Gwely 4 (ffenestr)",
# "Room 2.14" (floor 2, room 14), "Women’s bay" (an iPhone's apostrophe). Never a web or email
# address: a stranger's bed goes into the texts and pages to on-call staff and onto the
# channels' cards, where a phone or chat makes a link of "nhs-login.co/x". So no @ or :, and
# a full stop only where it cannot join a web address: not before a letter ("x.co") nor in an
# IP address's run of numbers ("10.0.0.1").
BED = re.compile(r"[\w '’()/#,&+.-]*")
LINKED = re.compile(r"\.[^\W\d_]|[0-9]\.[0-9]+\.[0-9]")
BED_ERROR = "Use letters, numbers and spaces only, like 12 or Side room 3"
# A relative's phone number or the patient's NHS number typed as the bed would go to pagers.
NUMBER_ERROR = "Enter the bed only, like 12 or Side room 3, not a phone or NHS number"


def bed_problem(text: str) -> str | None:
    """What is wrong with `text` (cleaned) as a bed on the public pages, or None."""
    if not is_bed(text):
        return BED_ERROR
    return NUMBER_ERROR if LONG_NUMBER.search(text) else None


def is_bed(text: str) -> bool:
    """Whether `text` (cleaned) is what a bed is called, never a web or email address. An
    accent typed as a mark of its own (w and ^ for ŵ) counts as its letter."""
    letters = "".join(c for c in text if not unicodedata.category(c).startswith("M"))
    return bool(BED.fullmatch(letters)) and not LINKED.search(letters)


@dataclass(frozen=True)
class PublicForm:
    """What was typed into the public request form, by its HTML field names."""

    caller: str = ""
    your_name: str = ""
    relationship: str = ""
    patient_name: str = ""
    bed: str = ""
    concern: str = ""
    spoken_to_ward: str = ""
    callback_number: str = ""


def validate_public(form: PublicForm, ward_name: str) -> ValidRequest:
    """Check a public form for `ward_name`; FormErrors keyed by HTML field name otherwise."""
    errors: dict[str, str] = {}
    caller = {"patient": Caller.PATIENT, "family": Caller.FAMILY}.get(form.caller)
    if caller is None:
        errors["caller"] = "Select if you are the patient, or family, a carer or a friend"
    your_name = _text(form.your_name, 100, "your_name", "Enter your name", errors)
    patient_name = _text(
        form.patient_name or (form.your_name if caller is Caller.PATIENT else ""),
        100,
        "patient_name",
        "Enter the patient's name",
        errors,
    )
    relationship = _text(form.relationship, 60, "relationship", "", errors)
    bed = _text(form.bed, 20, "bed", "", errors)
    if problem := bed_problem(bed):
        errors.setdefault("bed", problem)
    concern = _text(form.concern, 2000, "concern", "Tell us what is worrying you", errors)
    spoken = {"yes": True, "no": False, "": None}.get(form.spoken_to_ward, None)
    callback = _phone(form.callback_number, errors)
    if errors or caller is None:
        raise FormErrors(errors)
    return ValidRequest(
        caller=caller,
        ward=ward_name,
        bed=bed,
        nhs_number=None,
        news2=None,
        concern_kind=ConcernKind.UNTRIAGED,
        concern=concern,
        callback_number=callback,
        source=Source.WEB,
        caller_name=your_name,
        patient_name=patient_name,
        relationship=relationship or None,
        spoken_to_ward=spoken,
    )


def _text(value: str, limit: int, field: str, missing: str, errors: dict[str, str]) -> str:
    text = clean_text(value, multiline=field == "concern")
    if not text and missing:
        errors[field] = missing
    elif len(text) > limit:
        errors[field] = f"Use {limit:,} characters or fewer (you used {len(text):,})"
    return text


def _phone(value: str, errors: dict[str, str]) -> str:
    # Some phone keyboards type full-width digits (０７７００); NFKC makes them 07700.
    typed = unicodedata.normalize("NFKC", clean_text(value))
    digits = re.sub(r"[ ()-]", "", typed)
    # The same UK number written for abroad: "+44 (0)7700 900123" (as letterheads print it),
    # "0044 7700 900123" (as some phones store it).
    digits = re.sub(r"^(?:\+|00)440?(?=[1-9])", "+44", digits)
    if not typed:
        errors["callback_number"] = f"Enter a phone number we can call you on, like {PHONE_EXAMPLE}"
    elif not UK_PHONE.match(digits):
        errors["callback_number"] = f"Enter a UK phone number, like {PHONE_EXAMPLE}"
    elif CHARGED.match(digits):
        errors["callback_number"] = (
            "We cannot call 09, 070, 084 or 087 numbers. Enter a mobile or home phone number, "
            f"like {PHONE_EXAMPLE}"
        )
    return digits


def readable_phone(digits: str) -> str:
    """A stored number as people write it: 07700 900123, 01632 960001, +44 7700 900123."""
    if digits.startswith("+44"):
        return f"+44 {readable_phone('0' + digits[3:])[1:]}"
    groups = {"01": (5,), "07": (5,), "02": (3, 7), "03": (4, 7), "08": (4, 7)}
    if len(digits) != 11 or digits[:2] not in groups:
        return digits
    cuts = (0, *groups[digits[:2]], 11)
    return " ".join(digits[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
