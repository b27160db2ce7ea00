"""The escalation policy file: what it means, and a useful error for every way it can be wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reviews import service
from reviews.policy import Ladder, PolicyError, load_policy
from tests.support.builders import NURSE, SHIPPED_POLICY, make_services, request

GOOD = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "5m"
notify = ["outreach", "outreach-backup"]
channel = true
[[levels]]
after = "15m"
notify = ["site-manager"]
repeat_every = "5m"

[urgency.emergency]
news2_at_least = 7
attend_within = "30m"
[[urgency.emergency.levels]]
after = "0s"
notify = ["outreach", "icu-registrar"]
[[urgency.emergency.levels]]
after = "2m"
notify = ["site-manager"]
repeat_every = "2m"

[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "escalation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, text))
    return str(caught.value)


def test_shipped_policy_reads_as_the_contract_describes():
    policy = load_policy(SHIPPED_POLICY)
    ladder = policy.ladder_for(None)
    assert ladder.urgency == "standard"
    assert [level.after for level in ladder.levels] == [
        timedelta(0),
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=15),
    ]
    assert ladder.levels[0].notify == ("outreach",)
    assert ladder.levels[1].channel and not ladder.levels[0].channel
    assert ladder.levels[-1].repeat_every == timedelta(minutes=5)
    assert policy.ladder_for(7).urgency == "emergency"
    assert policy.ladder_for(7).attend_within == timedelta(minutes=30)
    assert policy.ladder_for(5).urgency == "urgent"
    assert policy.ladder_for(0).urgency == "standard"
    assert policy.roles() == ["icu-registrar", "outreach", "outreach-backup", "site-manager"]


def test_a_band_may_carry_its_own_levels(tmp_path):
    policy = load_policy(write(tmp_path, GOOD))
    emergency = policy.ladder_for(9)
    assert [level.notify for level in emergency.levels] == [
        ("outreach", "icu-registrar"),
        ("site-manager",),
    ]
    assert emergency.levels[-1].repeat_every == timedelta(minutes=2)
    standard = policy.ladder_for(3)
    assert len(standard.levels) == 3 and standard.attend_within == timedelta(hours=1)


def test_snapshot_round_trips_exactly(tmp_path):
    ladder = load_policy(write(tmp_path, GOOD)).ladder_for(8)
    assert Ladder.from_json(ladder.to_json()) == ladder


@pytest.mark.parametrize(
    ("change", "line", "problem"),
    [
        (('after = "5m"', 'after = "5 minutes"'), 5, "is not a duration like"),
        (('notify = ["outreach", "outreach-backup"]\n', ""), 4, "notify must be a list"),
        (
            (
                'notify = ["outreach"]\n[[levels]]\nafter = "5m"',
                'notify = []\n[[levels]]\nafter = "5m"',
            ),
            3,
            "notify must be a list",
        ),
        (("channel = true", 'channel = true\nrepeat_every = "1m"'), 8, "only the last level"),
        (('after = "15m"', 'after = "1m"'), 9, "earlier than the level above"),
        (("news2_at_least = 0", "news2_at_least = 1"), 25, "news2_at_least = 0"),
        (('attend_within = "1h"', 'attend_within = "soon"'), 26, "attend_within = 'soon'"),
        (('repeat_every = "5m"', 'repeat_every = "0s"'), 11, "longer than 0s"),
        (('repeat_every = "5m"', 'repeat_every = "99999999999h"'), 11, "is longer than 24h"),
        (('after = "15m"', 'after = "1441m"'), 9, "after = '1441m' is longer than 24h"),
        (("channel = true", 'channel = "yes"'), 7, "channel must be true or false"),
        (("channel = true", "chanel = true"), 7, "unknown setting 'chanel'"),
        (("news2_at_least = 7", "news2_at_least = 0"), 25, "both start at news2_at_least = 0"),
        (
            ('after = "0s"\nnotify = ["outreach", "icu', 'after = "0s"\nnotify = ["outreach" "icu'),
            18,
            "TOML syntax",
        ),
    ],
    ids=[
        "bad-duration",
        "missing-notify",
        "empty-notify",
        "repeat-not-last",
        "out-of-order",
        "no-zero-band",
        "bad-attend-within",
        "zero-repeat",
        "repeat-beyond-a-datetime",
        "a-day-and-a-minute",
        "channel-not-bool",
        "typo-key",
        "duplicate-band",
        "toml-syntax",
    ],
)
def test_every_malformed_policy_names_its_line_and_problem(tmp_path, change, line, problem):
    old, new = change
    assert old in GOOD
    message = error_for(tmp_path, GOOD.replace(old, new, 1))
    assert f"escalation.toml line {line}: " in message
    assert problem in message


def test_a_policy_without_levels_or_bands_says_what_it_needs(tmp_path):
    assert "[[levels]]" in error_for(
        tmp_path, '[urgency.standard]\nnews2_at_least = 0\nattend_within = "1h"\n'
    )
    assert "[urgency.NAME]" in error_for(
        tmp_path, '[[levels]]\nafter = "0s"\nnotify = ["a"]\nrepeat_every = "5m"\n'
    )


def test_a_ladder_whose_last_level_does_not_repeat_is_refused(tmp_path):
    """Its request, unacknowledged, would have been called no more after the last level."""
    said = error_for(
        tmp_path,
        '[[levels]]\nafter = "0s"\nnotify = ["outreach"]\n'
        '[[levels]]\nafter = "5m"\nnotify = ["site-manager"]\n'
        '[urgency.standard]\nnews2_at_least = 0\nattend_within = "1h"\n',
    )
    assert said.endswith(
        "line 4: [[levels]] number 2: the last level needs repeat_every (e.g. repeat_every = "
        '"5m"): it repeats until someone acknowledges'
    )


def test_roles_are_read_as_the_rota_writes_them(tmp_path):
    """The rota lower-cases its roles: "Outreach" in the policy used to match nobody, and every
    level was skipped as a gap while the bleep-holder was on shift."""
    path = tmp_path / "escalation.toml"
    path.write_text(
        '[[levels]]\nafter = "0s"\nnotify = [" Outreach", "ICU-Registrar", "outreach"]\n'
        'repeat_every = "5m"\n'
        '[urgency.standard]\nnews2_at_least = 0\nattend_within = "1h"\n'
    )
    assert load_policy(path).levels[0].notify == ("outreach", "icu-registrar")
    said = error_for(
        tmp_path,
        '[[levels]]\nafter = "0s"\nnotify = ["site manager"]\nrepeat_every = "5m"\n'
        '[urgency.standard]\nnews2_at_least = 0\nattend_within = "1h"\n',
    )
    assert said.endswith(
        "line 3: [[levels]] number 1: notify: unknown role format 'site manager': a role is "
        "one word of letters, digits and hyphens, e.g. outreach-backup"
    )


def test_an_unreadable_policy_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_an_unscored_request_from_a_patient_or_family_takes_the_named_band(db, clock):
    # "Mum is not making sense" from a relative, with no NEWS2: urgent, from any surface.
    services = make_services(db, clock)
    relative = service.raise_review(
        services=services, request=request(caller="family", news2=""), by=NURSE
    )
    patient = service.raise_review(
        services=services, request=request(caller="patient", news2=""), by=NURSE
    )
    staff = service.raise_review(
        services=services, request=request(caller="staff", news2=""), by=NURSE
    )
    scored = service.raise_review(
        services=services, request=request(caller="family", news2="2"), by=NURSE
    )
    assert [r.review.urgency for r in (relative, patient, staff, scored)] == [
        "urgent",
        "urgent",
        "standard",
        "standard",
    ]


def test_a_policy_without_the_family_key_ranks_them_as_any_unscored_request(tmp_path):
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.ladder_for(None, patient_or_family=True).urgency == "standard"


def test_the_family_key_must_name_a_band(tmp_path):
    message = error_for(tmp_path, 'unscored_patient_or_family = "urgnet"\n' + GOOD)
    assert message.endswith(
        "line 1: unscored_patient_or_family = 'urgnet' names no [urgency.NAME] band; "
        "use one of emergency, standard"
    )


def test_texts_are_asked_for_by_sms_on_a_level_and_by_fallback(tmp_path):
    asked = (
        GOOD.replace("channel = true", "channel = true\nsms = true") + '[fallback]\nafter = "2m"\n'
    )
    policy = load_policy(write(tmp_path, asked))
    ladder = policy.ladder_for(3)
    assert [level.sms for level in ladder.levels] == [False, True, False]
    assert ladder.fallback_after == timedelta(minutes=2)
    assert Ladder.from_json(ladder.to_json()) == ladder
    assert policy.asks_for_texts()
    assert not load_policy(write(tmp_path, GOOD)).asks_for_texts()


def test_a_snapshot_from_before_texts_reads_as_asking_for_none():
    old = (
        '{"urgency": "standard", "attend_within": 3600.0, "levels": [{"after": 0.0, '
        '"notify": ["outreach"], "channel": false, "repeat_every": null}]}'
    )
    ladder = Ladder.from_json(old)
    assert ladder.fallback_after is None and not ladder.levels[0].sms


@pytest.mark.parametrize(
    ("addition", "line", "problem"),
    [
        ('[fallback]\nafter = "2 minutes"\n', 28, "fallback.after = '2 minutes' is not a duration"),
        ('[fallback]\nafter = "0s"\n', 28, "fallback.after must be longer than 0s"),
        ("[fallback]\n", 27, 'fallback.after is missing: give a duration like "5m"'),
        ('[fallback]\nafter = "2m"\nevery = "1m"\n', 29, "fallback: unknown setting 'every'"),
        ('fallback = "2m"\n', 1, "fallback must be a table"),
    ],
    ids=["bad-duration", "zero", "missing-after", "unknown-key", "not-a-table"],
)
def test_a_bad_fallback_names_its_line_and_problem(tmp_path, addition, line, problem):
    text = addition + GOOD if addition.startswith("fallback =") else GOOD + addition
    message = error_for(tmp_path, text)
    assert f"escalation.toml line {line}: " in message, message
    assert problem in message


def test_sms_must_be_true_or_false(tmp_path):
    message = error_for(tmp_path, GOOD.replace("channel = true", 'sms = "yes"', 1))
    assert "escalation.toml line 7: [[levels]] number 2: sms must be true or false" in message
