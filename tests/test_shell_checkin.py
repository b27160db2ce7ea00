"""`checkin` in the local shell, typed at a real (pseudo-)terminal: each answer checked as
typed, the ward remembered, "worse" answered with what to do, a wish for review raised; and
the ward prompt shown for a trial with a wards file, whose wards both forms offer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.process import ROOT, bot_environment
from tests.support.terminal import CTRL_C, PtyBot

pytestmark = pytest.mark.slow


def test_daily_checkins_at_the_terminal(tmp_path):
    # CHECKIN_TIME this minute: a trial with a wards file shows each ward's prompt.
    earlier = datetime.now(ZoneInfo("Europe/London")).strftime("%H:%M")
    env = bot_environment(
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
        WARDS_FILE=str(ROOT / "wards.example.toml"),
        CHECKIN_TIME=earlier,
    )
    shell = PtyBot(env=env)
    try:
        shell.expect("> ")
        shell.expect("Daily check-in, Ward 7 (Acute Medicine): 0 check-ins recorded")
        shell.type("checkin")
        shell.expect("Ward (Ward 7 (Acute Medicine), Ward 12 (Elderly Care), Cedar Ward (Surgery)")
        shell.type("7")  # the ward's own number, never the seventh on a list
        shell.type("12")
        shell.type("9")  # not one of the three
        shell.expect("Type a number from 1 to 3.")
        shell.expect("Who answered?")
        shell.type("1")
        shell.type("3")  # worse
        shell.type("")
        shell.type("1")  # no review wanted
        said = shell.expect("repeat their observations now.")
        assert "Check-in recorded for Ward 7 (Acute Medicine) bed 12: worse." in said

        shell.type("checkin")
        shell.expect("(Enter for Ward 7 (Acute Medicine))")
        shell.type("")  # the last ward
        shell.type("14")
        shell.type("2")  # family
        shell.type("2")  # the same
        shell.type("Says she is not herself")
        shell.type("2")  # would like a review now
        said = shell.expect("will come to the bed.")
        assert "Ward 7 (Acute Medicine) bed 14: the same. RR-0001 raised" in said
        shell.expect("RR-0001 · URGENT · Ward 7 (Acute Medicine) bed 14")  # the card

        shell.type("checkins")
        shell.expect("Check-ins on Ward 7 (Acute Medicine) today: 2")
        today = shell.expect("Family, carer or advocate · the same · RR-0001")
        assert "bed 12 · " in today and "· Patient · worse" in today
        assert "not herself" not in today  # their words stay off the list
        shell.type("checkins ward-7")  # the wards file's code, as on the public page's address
        shell.expect("Check-ins on Ward 7 (Acute Medicine) today: 2")
        shell.type("checkins Nowhere")
        shell.expect("Check-ins on Nowhere today: 0 (not a ward of the wards file: Ward 7")
        shell.expect("Cedar Ward (Surgery))")  # the whole line, before the next command

        shell.type("checkin")
        shell.expect("Ward (Enter for")
        shell.press(CTRL_C)
        shell.expect("Cancelled: nothing was recorded.")

        # The request form offers the same wards, as Slack's and Teams' forms do.
        shell.type("raise")
        shell.type("1")  # staff
        shell.expect("Ward (Ward 7 (Acute Medicine), Ward 12 (Elderly Care)")
        shell.press(CTRL_C)
        shell.expect("Cancelled: nothing was raised.")
    finally:
        shell.stop()


def test_a_ward_named_by_its_code_or_its_short_name_is_the_same_ward_everywhere(tmp_path):
    # The shell's own hint is "checkins Ward 7", and the public page's address names a ward by
    # its code (/concern/ward-12): both must find the ward the forms recorded, and a form
    # given the code must record the ward's name, not a second "ward-12" in the digest.
    env = bot_environment(
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
        WARDS_FILE=str(ROOT / "wards.example.toml"),
        CHECKIN_TIME="23:59",
    )
    shell = PtyBot(env=env)
    try:
        shell.expect("> ")
        shell.type("checkin")
        shell.expect("Ward (Ward 7 (Acute Medicine)")
        shell.type("ward-12")  # the code, as in the page's address
        shell.type("4")
        shell.type("1")  # the patient
        shell.type("1")  # better
        shell.type("")
        shell.type("1")  # no review wanted
        said = shell.expect("> ")
        assert "Check-in recorded for Ward 12 (Elderly Care) bed 4: better." in said

        shell.type("checkins Ward 12")  # as the shell's own hint, "checkins Ward 7", puts it
        said = shell.expect("> ")
        assert "Check-ins on Ward 12 (Elderly Care) today: 1" in said
        assert "not a ward of the wards file" not in said

        shell.type("raise")
        shell.type("1")  # staff
        shell.type("CEDAR")  # the code, in capitals
        shell.type("3")
        shell.type("")
        shell.type("")
        shell.type("2")
        shell.type("Low urine output")
        shell.expect("RR-0001 raised.")
        shell.expect("RR-0001 · STANDARD · Cedar Ward (Surgery) bed 3")
    finally:
        shell.stop()


def test_a_ward_two_hospitals_share_is_never_taken_for_one_of_them(tmp_path):
    # A trust of two hospitals, each with its Ward 7. "Ward 7" names neither: recorded as the
    # last one listed, a check-in (and a request) went down on the other hospital's ward.
    wards = tmp_path / "wards.toml"
    wards.write_text(
        '[[wards]]\ncode = "ri-ward-7"\nname = "Ward 7 (Royal Infirmary)"\n\n'
        '[[wards]]\ncode = "gh-ward-7"\nname = "Ward 7 (General Hospital)"\n'
    )
    env = bot_environment(
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", WARDS_FILE=str(wards), CHECKIN_TIME="23:59"
    )
    shell = PtyBot(env=env)
    try:
        shell.expect("> ")
        for typed, bed in (("Ward 7", "4"), ("ri-ward-7", "5")):
            shell.type("checkin")
            shell.expect("Ward")
            shell.type(typed)
            shell.type(bed)
            shell.type("1")  # the patient
            shell.type("1")  # better
            shell.type("")
            shell.type("1")  # no review wanted
            said = shell.expect("> ")
            if typed == "Ward 7":
                assert "Check-in recorded for Ward 7 bed 4: better." in said
            else:
                assert "Check-in recorded for Ward 7 (Royal Infirmary) bed 5: better." in said
    finally:
        shell.stop()
