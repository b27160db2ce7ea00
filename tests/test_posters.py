"""`python bot.py posters`: an A4 PDF per ward whose printed QR code opens the ward's page."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp

from tests.support.process import run_bot
from tests.support.public_pages import EXAMPLE_WARDS, PHONE

PUBLIC_URL = "https://concern.example.nhs.uk"
A4_POINTS = (595, 842)


def posters(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    chosen = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/rr.db",
        "WARDS_FILE": str(EXAMPLE_WARDS),
        "PUBLIC_URL": PUBLIC_URL,
        "CONCERN_PHONE": PHONE,
        **settings,
    }
    return run_bot("posters", *args, **chosen)


def read_poster(path: Path) -> tuple[list[str], str, object]:
    """What a phone camera and a reader see on the printed page: its QR codes and its text."""
    document = pypdfium2.PdfDocument(path)
    assert len(document) == 1
    page = document[0]
    assert tuple(round(side) for side in page.get_size()) == A4_POINTS
    image = page.render(scale=150 / 72).to_pil()  # printed at 150 dpi
    text = page.get_textpage().get_text_range()
    document.close()
    return [found.text for found in zxingcpp.read_barcodes(image)], " ".join(text.split()), image


def test_one_poster_per_ward_whose_qr_code_opens_its_page(
    tmp_path: Path, screenshots: Path
) -> None:
    done = posters(tmp_path, "--out", str(tmp_path / "posters"))
    assert done.returncode == 0, done.stderr
    written = sorted((tmp_path / "posters").glob("*.pdf"))
    assert [p.name for p in written] == [
        "rapid-review-poster-cedar.pdf",
        "rapid-review-poster-ward-12.pdf",
        "rapid-review-poster-ward-7.pdf",
    ]
    for path in written:
        code = path.stem.removeprefix("rapid-review-poster-")
        codes, text, image = read_poster(path)
        assert codes == [f"{PUBLIC_URL}/concern/{code}"]
        assert f"concern.example.nhs.uk/concern/{code}" in text  # the address in words
        assert PHONE in text
        assert "not being listened to" in text and "Patients, family, carers" in text
        assert "emergency call bell" in text
        if code == "ward-7":
            image.save(screenshots / "poster-ward-7.png")  # type: ignore[attr-defined]


def test_one_ward_and_its_own_phone(tmp_path: Path) -> None:
    wards = tmp_path / "wards.toml"
    wards.write_text(
        '[[wards]]\ncode = "ward-7"\nname = "Ward 7"\nphone = "01632 960 777"\n'
        '[[wards]]\ncode = "ward-8"\nname = "Ward 8"\n'
    )
    done = posters(tmp_path, "--ward", "WARD-7", "--out", str(tmp_path), WARDS_FILE=str(wards))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.glob("*.pdf")] == ["rapid-review-poster-ward-7.pdf"]
    _codes, text, _image = read_poster(tmp_path / "rapid-review-poster-ward-7.pdf")
    assert "01632 960 777" in text and PHONE not in text


@pytest.mark.parametrize(
    ("args", "settings", "says"),
    [
        ([], {"PUBLIC_URL": ""}, "PUBLIC_URL: set the https address families use"),
        (["--ward", "ward-99"], {}, "--ward: no ward 'ward-99' in the wards file"),
        # The ward's name is what people call it; the option wants its code, so say them.
        (["--ward", "Ward 7"], {}, "give a code: ward-7, ward-12, cedar"),
        ([], {"CONCERN_PHONE": ""}, "CONCERN_PHONE: set the trust's 24/7 line"),
        # A newcomer's first try, before any wards file: what to do about it, not only what
        # is missing.
        ([], {"WARDS_FILE": ""}, "copy wards.example.toml to wards.toml beside bot.py"),
    ],
)
def test_posters_refuse_in_one_line(tmp_path: Path, args, settings, says) -> None:
    done = posters(tmp_path, *args, "--out", str(tmp_path / "out"), **settings)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
