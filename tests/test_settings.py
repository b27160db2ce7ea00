"""Settings: a wrong setting stops start-up with one line naming the variable, never a secret."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from settings import SettingsError, load_settings
from tests.support.fake_texts import NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID

ROOT = Path(__file__).resolve().parents[1]


def settings(**env: str):
    return load_settings(env, env_file=None)


def test_nothing_configured_means_the_local_shell_on_sqlite():
    s = settings()
    assert s.database_url == "sqlite:///rapidreview.db"
    assert not s.slack_configured and not s.teams_configured and not s.serves_http
    assert s.timezone.key == "Europe/London" and s.digest_time.hour == 8
    assert "2222" in s.fallback_contact


def test_modes():
    socket = settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", OUTREACH_CHANNEL="C1")
    assert socket.slack_socket_mode and not socket.serves_http
    http = settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", OUTREACH_CHANNEL="C1")
    assert not http.slack_socket_mode and http.serves_http
    teams = settings(
        TEAMS_APP_ID="00000000-1111-4222-8333-444444444444",
        TEAMS_APP_PASSWORD="p",
        TEAMS_TENANT_ID="t",
        TEAMS_OUTREACH_CONVERSATION="19:x@thread.tacv2",
    )
    assert teams.serves_http
    assert teams.teams_authority == "https://login.microsoftonline.com/t"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "OUTREACH_CHANNEL": "C1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "OUTREACH_CHANNEL"),
        ({"SLACK_API_URL": "http://127.0.0.1:9"}, "SLACK_API_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"TIMEZONE": "Europe/Atlantis"}, "TIMEZONE"),
        ({"DIGEST_TIME": "8am"}, "DIGEST_TIME"),
        ({"PORT": "http"}, "PORT"),
        ({"ESCALATION_POLICY": "/nowhere/policy.toml"}, "ESCALATION_POLICY"),
        ({"TEAMS_APP_ID": "a"}, "TEAMS_APP_PASSWORD"),
        (
            {
                "TEAMS_APP_ID": "00000000-1111-4222-8333-444444444444",
                "TEAMS_APP_PASSWORD": "p",
                "TEAMS_TENANT_ID": "t",
                "TEAMS_OUTREACH_CONVERSATION": "19:x@thread.tacv2",
                "TEAMS_AUTHORITY": "http://x",
            },
            "TEAMS_AUTHORITY",
        ),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"SSL_CERT_FILE": "/nowhere/ca.pem"}, "SSL_CERT_FILE"),
        ({"REQUESTS_CA_BUNDLE": "/nowhere/ca.pem"}, "REQUESTS_CA_BUNDLE"),
        (
            {"NOTIFY_API_KEY": "not-a-key", "NOTIFY_SMS_TEMPLATE_ID": NOTIFY_TEMPLATE_ID},
            "NOTIFY_API_KEY",
        ),
        ({"NOTIFY_API_KEY": NOTIFY_API_KEY}, "NOTIFY_SMS_TEMPLATE_ID"),
        (
            {"NOTIFY_API_KEY": NOTIFY_API_KEY, "NOTIFY_SMS_TEMPLATE_ID": "sms"},
            "NOTIFY_SMS_TEMPLATE_ID",
        ),
        ({"NOTIFY_SMS_TEMPLATE_ID": NOTIFY_TEMPLATE_ID}, "NOTIFY_API_KEY"),
        ({"NOTIFY_BASE_URL": "api.notify"}, "NOTIFY_BASE_URL"),
        ({"PAGER_WEBHOOK_URL": "https://pager.example.nhs.uk/page"}, "PAGER_WEBHOOK_SECRET"),
        ({"PAGER_WEBHOOK_URL": "pager:9000", "PAGER_WEBHOOK_SECRET": "s"}, "PAGER_WEBHOOK_URL"),
        ({"PAGER_WEBHOOK_SECRET": "s"}, "PAGER_WEBHOOK_URL"),
        ({"SENDER_PROCESS": "yes"}, "SENDER_PROCESS"),
        ({"FORWARDED_ALLOW_IPS": "zzz"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.5, proxy.example"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "10.1.0.1/16"}, "FORWARDED_ALLOW_IPS"),  # host bits set
        ({"DATABASE_URL": "sqlite://tmp/x.db"}, "DATABASE_URL"),  # two slashes: a traceback
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL"),
        ({"MANAGERS": "U0NURSE; U0OTHER"}, "MANAGERS"),  # made nobody a manager
        ({"ROTA_ADMINS": "lead@nhs.net bed.manager@nhs.net"}, "ROTA_ADMINS"),
        (
            {
                "TEAMS_APP_ID": "my-bot",
                "TEAMS_APP_PASSWORD": "p",
                "TEAMS_TENANT_ID": "t",
                "TEAMS_OUTREACH_CONVERSATION": "19:x@thread.tacv2",
            },
            "TEAMS_APP_ID",
        ),
    ],
)
def test_each_bad_setting_is_named(env, names):
    with pytest.raises(SettingsError) as raised:
        settings(**env)
    assert str(raised.value).startswith(names + ":")


@pytest.mark.parametrize(
    "proxies", ["*", "", "10.0.0.5", "10.0.0.5,", "10.0.0.5, 10.1.0.0/16", "::1,fd00::/8"]
)
def test_the_trusted_proxies_may_be_any_or_none_or_addresses_and_networks(proxies):
    assert settings(FORWARDED_ALLOW_IPS=proxies).forwarded_allow_ips == proxies.strip()


def test_start_up_stops_with_one_line_and_no_secret(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-very-secret-token",
        "SLACK_SIGNING_SECRET": "signing-secret-value",
        "DATABASE_URL": f"sqlite:///{tmp_path}/rr.db",
    }
    result = subprocess.run(
        [sys.executable, "bot.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "rapidreview: OUTREACH_CHANNEL: required with Slack (the channel ID, e.g. C0123)"
    ]
    assert "very-secret" not in result.stderr + result.stdout
    assert "signing-secret-value" not in result.stderr + result.stdout


def test_env_file_beside_bot_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DIGEST_TIME=07:30\nPORT=4000\n")
    s = load_settings({"PORT": "5000"}, env_file=env_file)
    assert s.digest_time.hour == 7 and s.digest_time.minute == 30
    assert s.port == 5000


def test_one_certificate_bundle_serves_slack_and_teams(tmp_path):
    bundle = tmp_path / "trust-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    other = tmp_path / "proxy-ca.pem"
    other.write_text("-----BEGIN CERTIFICATE-----\n")
    assert settings(SSL_CERT_FILE=str(bundle)).ca_bundle == str(bundle)
    # requests obeys REQUESTS_CA_BUNDLE over any session's own choice, so everything does.
    both = settings(SSL_CERT_FILE=str(bundle), REQUESTS_CA_BUNDLE=str(other))
    assert both.ca_bundle == str(other)
    with pytest.raises(SettingsError, match="^REQUESTS_CA_BUNDLE: no certificate bundle"):
        settings(SSL_CERT_FILE=str(bundle), REQUESTS_CA_BUNDLE="/nowhere/ca.pem")
    assert settings().ca_bundle == ""


def test_texts_and_pages_are_configured_and_a_bad_key_is_never_echoed():
    both = settings(
        NOTIFY_API_KEY=NOTIFY_API_KEY,
        NOTIFY_SMS_TEMPLATE_ID=NOTIFY_TEMPLATE_ID,
        PAGER_WEBHOOK_URL="https://pager.example.nhs.uk/page",
        PAGER_WEBHOOK_SECRET="s",
    )
    assert both.notify_configured and both.pager_configured
    assert both.notify_base_url == "https://api.notifications.service.gov.uk"
    assert not settings().notify_configured and not settings().pager_configured
    almost = NOTIFY_API_KEY[:-1]  # a key cut short when pasted
    with pytest.raises(SettingsError) as raised:
        settings(NOTIFY_API_KEY=almost, NOTIFY_SMS_TEMPLATE_ID=NOTIFY_TEMPLATE_ID)
    assert almost[-36:] not in str(raised.value) and almost[:20] not in str(raised.value)


def test_a_password_in_a_bad_url_is_never_echoed():
    with pytest.raises(SettingsError) as raised:
        settings(TEAMS_OPENID_METADATA_URL="ftp://bot:Sekrit-pw@login.example/")
    assert "Sekrit-pw" not in str(raised.value) and "bot:***@login.example" in str(raised.value)


# Every URL setting, given a value that holds a secret (a proxy's password, a webhook's token in
# its query, a token as the user name, the secret pasted into the wrong setting) and that is
# refused: the refusal names the setting and never the secret.
SECRET_BEARING_URLS = [
    ("SLACK_API_URL", "https://rr:S3cretPw@proxy.example/api"),  # no trailing '/'
    ("SLACK_API_URL", "ftp://rr:S3cretPw@proxy.example/api/"),
    ("SLACK_API_URL", "rr:S3cretPw@proxy.example/api/"),  # no scheme
    ("SLACK_API_URL", "https://proxy.example/api?token=S3cretTok"),
    ("TEAMS_SERVICE_URL", "https://rr:S3cretPw@proxy.example/uk"),
    ("TEAMS_SERVICE_URL", "https://[::1/uk?sig=S3cretSig"),  # unreadable: was a traceback
    ("TEAMS_OPENID_METADATA_URL", "ftp://S3cretTok@login.example/#S3cretFrag"),
    ("TEAMS_AUTHORITY", "http://rr:S3cretPw@login.example/tenant"),
    ("TEAMS_AUTHORITY", "https://[::1/tenant?sig=S3cretSig"),
    ("NOTIFY_BASE_URL", "api.notifications.example?key=S3cretKey"),
    ("PAGER_WEBHOOK_URL", "ftp://gw/hook?token=S3cretTok"),
    ("PAGER_WEBHOOK_URL", "ftp://S3cretTok@gw.example/hook"),
    ("PAGER_WEBHOOK_URL", "S3cretTok"),  # PAGER_WEBHOOK_SECRET's value, in the wrong setting
    ("PUBLIC_URL", "http://rr:S3cretPw@concern.example"),
    ("PUBLIC_URL", "https://concern.example/?token=S3cretTok"),
    ("PUBLIC_URL", "https://rr:S3cretPw@[::1"),
    ("DATABASE_URL", "mysql://rr:S3cretPw@db.example/rr"),
    ("DATABASE_URL", "postgresql+nodriver://rr:S3cretPw@db.example/rr"),
]


@pytest.mark.parametrize(("name", "value"), SECRET_BEARING_URLS)
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_refused_url_setting_never_shows_its_secret(name, value, log_format, capsys):
    """SLACK_API_URL='https://rr:S3cretProxyPw@proxy.example/api' was refused with "must end
    with '/', e.g. https://rr:S3cretProxyPw@proxy.example/api/", and PAGER_WEBHOOK_URL's token
    was quoted whole: into a terminal, a ticket, or the log shipper's index."""
    import json

    from bot import refuse

    with pytest.raises(SettingsError) as raised:
        settings(**{name: value}, LOG_FORMAT=log_format)
    assert refuse(str(raised.value), log_format) == 2
    said = capsys.readouterr().err
    assert "S3cret" not in said
    [line] = said.splitlines()
    message = json.loads(line)["message"] if log_format == "json" else line
    assert message.startswith(f"rapidreview: {name}: " if log_format == "text" else f"{name}: ")


def test_a_refused_url_is_quoted_without_its_secrets_but_still_helps():
    def refusal(**env: str) -> str:
        with pytest.raises(SettingsError) as raised:
            settings(**env)
        return str(raised.value)

    assert refusal(SLACK_API_URL="https://rr:S3cretPw@proxy.example/api?t=x") == (
        "SLACK_API_URL: must end with '/', e.g. https://rr:***@proxy.example/api/"
    )
    assert refusal(PAGER_WEBHOOK_URL="ftp://S3cretTok@gw.example/hook?token=S3cretTok") == (
        "PAGER_WEBHOOK_URL: must be an http(s) URL, got 'ftp://***@gw.example/hook?***'"
    )
    assert refusal(PAGER_WEBHOOK_URL="gw.example/hook") == (
        "PAGER_WEBHOOK_URL: must be an http(s) URL (what is set has no https:// and is not "
        "shown, in case it is a secret)"
    )


def test_a_secret_in_a_url_setting_is_not_in_the_refusal_of_the_real_bot(tmp_path):
    """As an operator meets it: LOG_FORMAT=json and a proxy's password in SLACK_API_URL."""
    from tests.support.process import run_bot

    result = run_bot(
        "rota",
        "show",
        LOG_FORMAT="json",
        SLACK_API_URL="https://rr:S3cretProxyPw@proxy.example/api",
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )
    assert result.returncode == 2
    assert "S3cretProxyPw" not in result.stderr + result.stdout
    assert "https://rr:***@proxy.example/api/" in result.stderr


@pytest.mark.parametrize(
    ("zone", "warned"), [("GMT", True), ("UTC", True), ("Europe/London", False)]
)
def test_a_time_zone_without_summer_time_is_warned_at_start(zone, warned, caplog):
    """TIMEZONE=GMT is a real zone, and an hour out for every UK rota time all summer."""
    from bot import say_a_time_zone_without_summer_time

    with caplog.at_level(logging.WARNING):
        say_a_time_zone_without_summer_time(settings(TIMEZONE=zone))
    said = [r.getMessage() for r in caplog.records]
    assert said == (
        [
            f"TIMEZONE={zone} has no summer time: every rota time and time shown would be an hour "
            "out in British Summer Time. For wards in the UK, set TIMEZONE=Europe/London."
        ]
        if warned
        else []
    )


@pytest.mark.parametrize(
    ("days", "warned"), [("9", True), ("29", True), ("30", False), ("90", False)]
)
def test_a_short_retention_is_said_at_start_with_what_it_erases(days, warned, caplog):
    """RETENTION_DAYS=9 (a typo for 90) is a choice a trust may make, so not refused: but it
    erases identifiers at the next daily job, so start-up says so in one line."""
    from bot import say_a_short_retention

    with caplog.at_level(logging.WARNING):
        say_a_short_retention(settings(RETENTION_DAYS=days))
    said = [r.getMessage() for r in caplog.records]
    assert said == (
        [
            f"RETENTION_DAYS={days}: patient identifiers and free text of requests closed (and "
            f"check-ins recorded) more than {days} days ago will be erased at the daily retention "
            "job (first 10 minutes from now if it has not run today, else just after "
            "midnight); if that is a typo, stop the bot and set RETENTION_DAYS=90"
        ]
        if warned
        else []
    )


@pytest.mark.slow
def test_the_running_bot_warns_once_of_a_short_retention(tmp_path):
    from tests.support.fake_slack import FakeSlack
    from tests.support.process import start_slack_bot

    with FakeSlack() as fake:
        bot = start_slack_bot(
            fake.url,
            f"sqlite:///{tmp_path}/rr.db",
            ROOT / "escalation.toml",
            RETENTION_DAYS="9",
            DIGEST_CHANNEL="C0DIGEST",
        )
        bot.stop()
    said = [line for line in bot.log if "RETENTION_DAYS=9:" in line]
    assert len(said) == 1 and "WARNING" in said[0], bot.log
    assert "more than 9 days ago will be erased" in said[0]


TEAMS = {
    "TEAMS_APP_ID": "00000000-1111-4222-8333-444444444444",
    "TEAMS_APP_PASSWORD": "p",
    "TEAMS_TENANT_ID": "t",
    "TEAMS_OUTREACH_CONVERSATION": "19:outreach@thread.tacv2",
}
CHANNEL = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"


@pytest.mark.parametrize("name", ["TEAMS_OUTREACH_CONVERSATION", "TEAMS_DIGEST_CONVERSATION"])
@pytest.mark.parametrize(
    "value",
    [
        "General",  # the channel's name
        "4a95f7d8db4c4e7fae857bcebe0623e6",  # without 19: and @thread
        "19:4a95f7d8db4c4e7fae857bcebe0623e6",
        "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread",
        f"https://teams.microsoft.com/l/channel/{CHANNEL}/General?groupId=x",  # the whole link
        f"{CHANNEL}/General",
        "a:1Hk2lPq7",  # a personal chat's id
        "C0123ABCD",  # a Slack channel
    ],
)
def test_a_teams_conversation_that_is_not_a_channel_id_is_refused_naming_it(name, value):
    with pytest.raises(SettingsError) as raised:
        settings(**{**TEAMS, name: value})
    # A try at an id or a link is quoted back; anything else may be a secret set in the wrong
    # place (as an app password is), and is not.
    attempt = "19:" in value or "/channel/" in value
    got = repr(value) if attempt else "a value not shown here (it is no Teams id or link)"
    assert str(raised.value) == (
        f"{name}: must be a Teams channel conversation ID like 19:abc123@thread.tacv2 (in Teams, "
        f"Get link to channel: the part after /channel/), got {got}"
    )


def test_a_secret_set_as_a_teams_conversation_is_not_quoted_back() -> None:
    with pytest.raises(SettingsError) as raised:
        settings(**{**TEAMS, "TEAMS_OUTREACH_CONVERSATION": "Vq8Q~secretvalue.abc"})
    assert "secretvalue" not in str(raised.value)


@pytest.mark.parametrize("name", ["TEAMS_OUTREACH_CONVERSATION", "TEAMS_DIGEST_CONVERSATION"])
@pytest.mark.parametrize("suffix", [";messageid=1718000000000", ";messageId=1718000000000"])
def test_a_teams_conversation_with_a_message_id_is_refused_saying_what_to_remove(name, suffix):
    """A channel reply's conversation id (in a log, or a message's link) names one thread: every
    card would have gone into it, under an old message, instead of into the channel."""
    with pytest.raises(SettingsError) as raised:
        settings(**{**TEAMS, name: CHANNEL + suffix})
    assert str(raised.value) == (
        f"{name}: remove the ;messageid=... part, which names one message's reply thread, not "
        f"the channel: set it to {CHANNEL}"
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [
        (CHANNEL, CHANNEL),
        ("19:General_4a95f7d8-db4c@thread.skype", "19:General_4a95f7d8-db4c@thread.skype"),
        # As Get link to channel gives it: decoded, since a real id never holds a '%'.
        ("19%3a4a95f7d8db4c4e7fae857bcebe0623e6%40thread.tacv2", CHANNEL),
        ("19%3A4a95f7d8db4c4e7fae857bcebe0623e6%40thread.tacv2", CHANNEL),
    ],
)
def test_a_teams_channel_id_is_taken_and_a_link_encoded_one_decoded(value, read):
    outreach = settings(**{**TEAMS, "TEAMS_OUTREACH_CONVERSATION": value})
    assert outreach.teams_outreach_conversation == read
    digest = settings(**{**TEAMS, "TEAMS_DIGEST_CONVERSATION": value})
    assert digest.teams_digest_conversation == read


def test_a_bad_teams_conversation_stops_the_bot_with_one_line(tmp_path):
    from tests.support.process import run_bot

    result = run_bot(
        **TEAMS,
        TEAMS_DIGEST_CONVERSATION=CHANNEL + ";messageid=1718000000000",
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rapidreview: TEAMS_DIGEST_CONVERSATION: remove the ;messageid=... part, which names one "
        f"message's reply thread, not the channel: set it to {CHANNEL}"
    ]
    assert result.stdout == ""


SLACK = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "OUTREACH_CHANNEL": "C1"}


@pytest.mark.parametrize("name", ["OUTREACH_CHANNEL", "DIGEST_CHANNEL"])
@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("#outreach", "'#outreach'"),
        ("#outreach-team", "'#outreach-team'"),
        # Without its #, as a secret in the wrong place might be: not quoted.
        ("outreach", "a value not shown here"),
        ("c0123abcd", "a value not shown here"),  # an ID in lower case is no ID Slack knows
        ("xoxb-1-2-secret", "a value not shown here"),
    ],
)
def test_a_slack_channel_given_by_name_is_refused_saying_where_its_id_is(name, value, got):
    with pytest.raises(SettingsError) as raised:
        settings(**{**SLACK, name: value})
    assert str(raised.value) == (
        f"{name}: must be the Slack channel's ID like C0123ABCD, not its name (in Slack, open "
        f"the channel's details: the ID is at the bottom of About), got {got}"
    )


@pytest.mark.parametrize("value", ["C0123ABCD", "G01ABCDEF2", "C1"])
def test_a_slack_channel_id_is_taken(value):
    assert settings(**{**SLACK, "OUTREACH_CHANNEL": value}).outreach_channel == value
