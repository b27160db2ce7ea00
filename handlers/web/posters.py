"""`python bot.py posters`: one printable A4 PDF per ward, telling patients and families they
can ask for a rapid review themselves, with a QR code to the ward's page and the phone line.

fpdf2 writes the PDF: pure Python, one small page of text and one image is all it needs (and it
brings nothing we do not already have but fonttools). segno makes the QR code.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import segno
from fpdf import FPDF

from reviews.wards import Ward

BLUE = (0, 94, 184)
TEXT = (33, 43, 50)
RED = (213, 40, 27)
WHITE = (255, 255, 255)
MARGIN = 18  # mm

WHO_AND_WHEN = (
    "If you are worried that you, or the person you care for, is getting worse, or not being "
    "listened to, you can ask for a rapid review. Patients, family, carers and friends can all "
    "ask, at any time of day or night."
)
WHO_COMES = (
    "The critical care outreach team will call you back: specialist nurses and doctors who help "
    "when a patient is getting more unwell. They are not the ward team."
)
EMERGENCY = "In an emergency, tell any member of staff now or press the emergency call bell."


class PosterError(ValueError):
    """Posters cannot be made as asked; the message says why in one line."""


def ward_address(public_url: str, ward: Ward) -> str:
    return f"{public_url}/concern/{ward.code}"


def write_posters(
    *, wards: Sequence[Ward], public_url: str, phone: str, out: Path, only: str | None = None
) -> list[Path]:
    """One PDF per ward (or only the ward coded `only`) in `out`; the paths written."""
    if not public_url:
        raise PosterError(
            "PUBLIC_URL: set the https address families use (e.g. https://concern.example.nhs.uk);"
            " a poster without it would send them nowhere"
        )
    chosen = [w for w in wards if only is None or w.code.lower() == only.lower()]
    if not wards:
        raise PosterError(
            "WARDS_FILE: no wards file, so there are no wards to make posters for: copy "
            "wards.example.toml to wards.toml beside bot.py (or set WARDS_FILE) and give your "
            "wards' codes and names"
        )
    if not chosen:
        codes = ", ".join(w.code for w in wards)
        raise PosterError(f"--ward: no ward {only!r} in the wards file; give a code: {codes}")
    missing = [w.code for w in chosen if not (w.phone or phone)]
    if missing:
        raise PosterError(
            f"CONCERN_PHONE: set the trust's 24/7 line (or a phone for ward {missing[0]!r}); "
            "every poster gives it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for ward in chosen:
            path = out / f"rapid-review-poster-{ward.code}.pdf"
            path.write_bytes(poster(ward, ward_address(public_url, ward), ward.phone or phone))
            paths.append(path)
    except OSError as error:
        raise PosterError(f"--out: cannot write to {out} ({error.strerror})") from None
    return paths


def poster(ward: Ward, address: str, phone: str) -> bytes:
    """The A4 poster for one ward, as PDF bytes."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.add_page()
    pdf.set_title(printable(f"Ask for a rapid review - {ward.name}"))
    width = pdf.w - 2 * MARGIN

    pdf.set_fill_color(*BLUE)
    pdf.rect(0, 0, pdf.w, 46, style="F")
    pdf.set_text_color(*WHITE)
    pdf.set_xy(MARGIN, 10)
    pdf.set_font("helvetica", "B", 30)
    pdf.multi_cell(width, 13, "Worried they are getting worse?", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 14)
    where = f"{ward.name}, {ward.site}" if ward.site else ward.name
    pdf.cell(width, 10, printable(where), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*TEXT)
    pdf.set_xy(MARGIN, 54)
    pdf.set_font("helvetica", "B", 24)
    pdf.cell(width, 11, "Ask for a rapid review", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("helvetica", "", 14)
    pdf.multi_cell(width, 7, WHO_AND_WHEN, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(width, 7, WHO_COMES, align="L", new_x="LMARGIN", new_y="NEXT")

    side = 64
    top = pdf.get_y() + 5
    pdf.image(qr_png(address), x=(pdf.w - side) / 2, y=top, w=side, h=side)
    pdf.set_xy(MARGIN, top + side + 1)
    pdf.set_font("helvetica", "", 12)
    pdf.cell(width, 6, "Scan with your phone's camera", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.cell(width, 7, "or type this address:", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "B", 16)
    words = printable(address.split("://", 1)[-1])
    pdf.multi_cell(width, 8, words, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", "", 12)
    pdf.cell(width, 7, "or call us, day or night:", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "B", 26)
    pdf.cell(width, 12, printable(phone), align="C", new_x="LMARGIN", new_y="NEXT")

    pdf.set_xy(MARGIN, pdf.h - MARGIN - 26)
    pdf.set_draw_color(*RED)
    pdf.set_line_width(1.2)
    pdf.set_font("helvetica", "B", 14)
    pdf.multi_cell(
        width, 8, EMERGENCY, border=1, padding=3, align="L", new_x="LMARGIN", new_y="NEXT"
    )
    return bytes(pdf.output())


TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def printable(text: str) -> str:
    """Text in the PDF's built-in font (Latin-1): curly quotes and dashes made plain."""
    return text.translate(TYPOGRAPHY).encode("latin-1", "replace").decode("latin-1")


def qr_png(address: str) -> io.BytesIO:
    """The QR code as a PNG: medium error correction survives a scuffed, laminated poster."""
    image = io.BytesIO()
    segno.make(address, error="m", micro=False).save(image, kind="png", scale=12, border=4)
    image.seek(0)
    return image
