"""Settings: one frozen object read from the environment or a `.env` file beside bot.py.

Every problem is reported as a SettingsError whose message names the variable and says what to
fix. Secrets are never part of a message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HERE = Path(__file__).resolve().parent
DEFAULT_FALLBACK = "Bleep the outreach team directly; in an emergency call 2222."
DEFAULT_TEAMS_SERVICE_URL = "https://smba.trafficmanager.net/uk/"
DEFAULT_TEAMS_OPENID = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_NOTIFY_URL = "https://api.notifications.service.gov.uk"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///rapidreview.db"
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = ""
    outreach_channel: str = ""
    digest_channel: str = ""
    teams_app_id: str = ""
    teams_app_password: str = ""
    teams_tenant_id: str = ""
    teams_outreach_conversation: str = ""
    teams_digest_conversation: str = ""
    teams_service_url: str = DEFAULT_TEAMS_SERVICE_URL
    teams_openid_metadata_url: str = DEFAULT_TEAMS_OPENID
    teams_authority: str = ""
    managers: frozenset[str] = field(default_factory=frozenset)
    rota_admins: frozenset[str] = field(default_factory=frozenset)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    digest_time: time = time(8, 0)
    checkin_time: time = time(10, 0)
    retention_days: int = 90
    escalation_policy: Path = HERE / "escalation.toml"
    fallback_contact: str = DEFAULT_FALLBACK
    host: str = "0.0.0.0"  # noqa: S104 - a server for the ward network, as CONTRACT.md says
    port: int = 3000
    port_given: bool = False  # PORT was set: the local shell serves the public pages too
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object a line
    ca_bundle: str = ""  # REQUESTS_CA_BUNDLE, else SSL_CERT_FILE; empty: the system's store
    notify_api_key: str = ""
    notify_sms_template_id: str = ""
    notify_base_url: str = DEFAULT_NOTIFY_URL
    pager_webhook_url: str = ""
    pager_webhook_secret: str = ""
    wards_file: Path | None = None
    public_url: str = ""  # no trailing slash
    concern_phone: str = ""
    # Proxies whose X-Forwarded-For names the visitor (the address the public pages' rate limit
    # counts); uvicorn's own setting of the same name, "*" for any, "" for none.
    forwarded_allow_ips: str = "127.0.0.1"
    # On PostgreSQL, the outbox is sent from a second process of the bot's own
    # (sender_process.py); SQLite always sends from the bot's one process.
    sender_process: bool = True

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def slack_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)

    @property
    def teams_configured(self) -> bool:
        return bool(self.teams_app_id and self.teams_app_password)

    @property
    def notify_configured(self) -> bool:
        return bool(self.notify_api_key)

    @property
    def pager_configured(self) -> bool:
        return bool(self.pager_webhook_url)

    @property
    def serves_http(self) -> bool:
        slack_http = self.slack_configured and not self.slack_socket_mode
        # A trust with wards has family pages, and they need the listener (even in Socket Mode).
        return slack_http or self.teams_configured or self.wards_file is not None


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = HERE / ".env",
    *,
    complete: bool = True,
) -> Settings:
    """Read settings from `environ` (default os.environ) over the values in `env_file`.
    Without `complete`, settings that go together are not checked for their partners."""
    values = _values(environ, env_file)

    def get(name: str, default: str = "") -> str:
        return values.get(name, default).strip() or default

    settings = Settings(
        database_url=_database_url(get("DATABASE_URL", "sqlite:///rapidreview.db")),
        slack_bot_token=_prefixed("SLACK_BOT_TOKEN", get("SLACK_BOT_TOKEN"), "xoxb-"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_app_token=_prefixed("SLACK_APP_TOKEN", get("SLACK_APP_TOKEN"), "xapp-"),
        slack_api_url=_base_url("SLACK_API_URL", get("SLACK_API_URL")),
        outreach_channel=_slack_channel("OUTREACH_CHANNEL", get("OUTREACH_CHANNEL")),
        digest_channel=_slack_channel("DIGEST_CHANNEL", get("DIGEST_CHANNEL")),
        teams_app_id=get("TEAMS_APP_ID"),
        teams_app_password=get("TEAMS_APP_PASSWORD"),
        teams_tenant_id=get("TEAMS_TENANT_ID"),
        teams_outreach_conversation=_conversation(
            "TEAMS_OUTREACH_CONVERSATION", get("TEAMS_OUTREACH_CONVERSATION")
        ),
        teams_digest_conversation=_conversation(
            "TEAMS_DIGEST_CONVERSATION", get("TEAMS_DIGEST_CONVERSATION")
        ),
        teams_service_url=_base_url(
            "TEAMS_SERVICE_URL", get("TEAMS_SERVICE_URL", DEFAULT_TEAMS_SERVICE_URL)
        ),
        teams_openid_metadata_url=_url(
            "TEAMS_OPENID_METADATA_URL", get("TEAMS_OPENID_METADATA_URL", DEFAULT_TEAMS_OPENID)
        ),
        teams_authority=_authority(get("TEAMS_AUTHORITY"), get("TEAMS_TENANT_ID")),
        managers=_people("MANAGERS", get("MANAGERS")),
        rota_admins=_people("ROTA_ADMINS", get("ROTA_ADMINS")),
        timezone=_timezone(get("TIMEZONE", "Europe/London")),
        digest_time=_clock_time("DIGEST_TIME", get("DIGEST_TIME", "08:00")),
        checkin_time=_clock_time("CHECKIN_TIME", get("CHECKIN_TIME", "10:00")),
        retention_days=_retention_days(get("RETENTION_DAYS", "90")),
        escalation_policy=_policy_path(get("ESCALATION_POLICY")),
        fallback_contact=get("FALLBACK_CONTACT", DEFAULT_FALLBACK),
        host=get("HOST", "0.0.0.0"),  # noqa: S104
        port=_port(get("PORT", "3000")),
        port_given=bool(get("PORT")),
        log_level=_log_level(get("LOG_LEVEL", "INFO")),
        log_format=_log_format(get("LOG_FORMAT", "text")),
        ca_bundle=_ca_bundle(values),
        notify_api_key=_notify_key(get("NOTIFY_API_KEY")),
        notify_sms_template_id=_uuid("NOTIFY_SMS_TEMPLATE_ID", get("NOTIFY_SMS_TEMPLATE_ID")),
        notify_base_url=_url("NOTIFY_BASE_URL", get("NOTIFY_BASE_URL", DEFAULT_NOTIFY_URL)),
        pager_webhook_url=_url("PAGER_WEBHOOK_URL", url)
        if (url := get("PAGER_WEBHOOK_URL"))
        else "",
        pager_webhook_secret=get("PAGER_WEBHOOK_SECRET"),
        wards_file=_wards_file(get("WARDS_FILE")),
        public_url=_public_url(get("PUBLIC_URL")),
        concern_phone=_phone("CONCERN_PHONE", get("CONCERN_PHONE")),
        forwarded_allow_ips=_proxies(values.get("FORWARDED_ALLOW_IPS", "127.0.0.1")),
        sender_process=_on_off("SENDER_PROCESS", get("SENDER_PROCESS", "on")),
    )
    if complete:
        _check_combinations(settings)
    return settings


def log_format_of(
    environ: Mapping[str, str] | None = None, env_file: Path | None = HERE / ".env"
) -> str:
    """LOG_FORMAT alone, read as load_settings reads it, for saying why the other settings were
    refused: "json" when it says json, else "text" (a LOG_FORMAT that is neither is itself
    refused, in text)."""
    value = _values(environ, env_file).get("LOG_FORMAT", "").strip().lower()
    return "json" if value == "json" else "text"


def _values(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def _check_combinations(s: Settings) -> None:
    """Every setting that is missing for what is configured, said at once."""
    problems = [
        problem
        for needed, problem in (
            (
                bool(s.slack_bot_token and not (s.slack_app_token or s.slack_signing_secret)),
                "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN unless SLACK_APP_TOKEN "
                "(Socket Mode) is set",
            ),
            (
                bool((s.slack_app_token or s.slack_signing_secret) and not s.slack_bot_token),
                "SLACK_BOT_TOKEN: required when Slack is configured (xoxb-...)",
            ),
            (
                bool(s.slack_bot_token and not s.outreach_channel),
                "OUTREACH_CHANNEL: required with Slack (the channel ID, e.g. C0123)",
            ),
            (
                bool(s.teams_app_id and not s.teams_app_password),
                "TEAMS_APP_PASSWORD: TEAMS_APP_ID and TEAMS_APP_PASSWORD go together",
            ),
            (
                bool(s.teams_app_password and not s.teams_app_id),
                "TEAMS_APP_ID: TEAMS_APP_ID and TEAMS_APP_PASSWORD go together",
            ),
            (
                bool(s.teams_app_id and not s.teams_authority),
                "TEAMS_TENANT_ID: required with Teams (single-tenant bot)",
            ),
            (
                bool(s.teams_app_id and not s.teams_outreach_conversation),
                "TEAMS_OUTREACH_CONVERSATION: required with Teams (19:...@thread.tacv2)",
            ),
            (
                bool(s.notify_api_key and not s.notify_sms_template_id),
                "NOTIFY_SMS_TEMPLATE_ID: NOTIFY_API_KEY and NOTIFY_SMS_TEMPLATE_ID go together",
            ),
            (
                bool(s.notify_sms_template_id and not s.notify_api_key),
                "NOTIFY_API_KEY: NOTIFY_API_KEY and NOTIFY_SMS_TEMPLATE_ID go together",
            ),
            (
                bool(s.pager_webhook_url and not s.pager_webhook_secret),
                "PAGER_WEBHOOK_SECRET: PAGER_WEBHOOK_URL and PAGER_WEBHOOK_SECRET go together",
            ),
            (
                bool(s.pager_webhook_secret and not s.pager_webhook_url),
                "PAGER_WEBHOOK_URL: PAGER_WEBHOOK_URL and PAGER_WEBHOOK_SECRET go together",
            ),
            (
                # As the Teams package checks it: otherwise every token Teams sends is refused.
                bool(s.teams_app_id and not GUID.fullmatch(s.teams_app_id)),
                "TEAMS_APP_ID: must be the Azure bot's Microsoft App ID, a GUID like "
                "00000000-1111-4222-8333-444444444444",
            ),
        )
        if needed
    ]
    if problems:
        raise SettingsError("; ".join(problems))


GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _database_url(value: str) -> str:
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
        raise SettingsError(
            "DATABASE_URL: must be sqlite:///FILE or postgresql+psycopg://user@host/db"
        )
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
    try:
        make_url(value).get_dialect().import_dbapi()
    except (ArgumentError, ImportError, ValueError) as error:
        # The error's own text can quote the URL, password and all: say what, not where.
        raise SettingsError(
            f"DATABASE_URL: not a URL the bot can use ({type(error).__name__}: a driver that "
            "is not installed, or a malformed host or port); use sqlite:///FILE or "
            "postgresql+psycopg://user@host/db"
        ) from None
    if value.startswith("sqlite") and not re.match(r"^sqlite(\+\w+)?:///.", value):
        # sqlite://tmp/x.db (two slashes) passed this check and failed at start with a traceback.
        raise SettingsError(
            "DATABASE_URL: a SQLite URL is sqlite:/// then the file, e.g. sqlite:///rapidreview.db "
            "(four slashes for a full path: sqlite:////var/lib/rapidreview/rapidreview.db)"
        )
    return value


def mask_url(url: str) -> str:
    """`url` fit to print: any password, in the address or as a password= parameter, is ***."""
    url = re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL we can take apart: keep nothing after a user@ part
        return re.sub(r"//[^/@]*@", "//***@", url)
    if password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


# The user-information part of a URL, with or without a scheme ("rr:pw@proxy/api" too).
USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?([^/?#@]*)@")


def shown_url(value: str) -> str:
    """A URL setting as a refusal may quote it: mask_url's, and also without a user name that
    has no password (some webhooks take their token as one: ***@) and without any query string
    or fragment (a webhook's token or signature: ?*** and #***)."""
    cut = min((i for i in (value.find("?"), value.find("#")) if i >= 0), default=len(value))
    kept, rest = value[:cut], value[cut:]

    def userinfo(found: re.Match[str]) -> str:
        user, colon, _ = found[2].partition(":")
        return f"{found[1] or ''}{user + ':***' if colon else '***'}@"

    return mask_url(USERINFO.sub(userinfo, kept)) + (f"{rest[0]}***" if rest else "")


def _got(value: str) -> str:
    """How a refusal of a URL setting ends: the value as shown_url shows it, or, for one that
    is no URL at all (no scheme://), not the value: that may be the secret pasted into the
    wrong setting (PAGER_WEBHOOK_SECRET's value in PAGER_WEBHOOK_URL)."""
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        return f", got {shown_url(value)!r}"
    return " (what is set has no https:// and is not shown, in case it is a secret)"


def _prefixed(name: str, value: str, prefix: str) -> str:
    if value and not value.startswith(prefix):
        raise SettingsError(f"{name}: must start with {prefix} (check you copied the right token)")
    return value


def _url(name: str, value: str) -> str:
    try:
        parsed = urlparse(value)
    except ValueError:  # "Invalid IPv6 URL": a traceback, not a refusal, before
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name}: must be an http(s) URL{_got(value)}")
    return value


def _base_url(name: str, value: str) -> str:
    if not value:
        return value
    _url(name, value)
    if not value.endswith("/"):
        address = re.split(r"[?#]", value, maxsplit=1)[0]
        raise SettingsError(f"{name}: must end with '/', e.g. {shown_url(address)}/")
    return value


def _uuid(name: str, value: str) -> str:
    if value and not UUID.fullmatch(value):
        raise SettingsError(f"{name}: must be a UUID like 0b3d4a7e-1c2f-4e5a-9b8c-7d6e5f4a3b2c")
    return value


def _notify_key(value: str) -> str:
    """GOV.UK Notify keys are KEYNAME-SERVICEID-SECRET, the last two UUIDs; never echoed."""
    if value and not re.fullmatch(r".+-" + UUID.pattern + "-" + UUID.pattern, value):
        raise SettingsError(
            "NOTIFY_API_KEY: not a GOV.UK Notify API key (name, then two UUIDs; copy the whole key)"
        )
    return value


# A Slack channel's ID: C... (public or private), G... (a private channel made before 2021).
SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]+")
# A Slack channel's name as people write it, worth quoting back: no secret looks like one (a
# signing secret is lower-case hex, a token xoxb-..., so a bare name is not quoted).
SLACK_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")


def _slack_channel(name: str, value: str) -> str:
    """A Slack channel ID. Its name ("#outreach") would post the first card, since
    chat.postMessage looks names up, and then fail every update of it (chat.update takes only
    an ID): the team would see every request stay "raised" however it was answered."""
    if not value or SLACK_CHANNEL.fullmatch(value):
        return value
    got = repr(value) if SLACK_CHANNEL_NAME.fullmatch(value) else "a value not shown here"
    raise SettingsError(
        f"{name}: must be the Slack channel's ID like C0123ABCD, not its name (in Slack, open "
        f"the channel's details: the ID is at the bottom of About), got {got}"
    )


# A Teams channel's conversation id: 19:<id>@thread.tacv2 (older channels: @thread.skype).
CONVERSATION = re.compile(r"19:[^\s@;/?#%]+@thread\.[A-Za-z0-9]+")


# What makes a wrong TEAMS_*_CONVERSATION worth quoting back: a try at an id, or a link.
TEAMS_ID_ATTEMPT = re.compile(r"19:|@thread|/channel/", re.IGNORECASE)


def _conversation(name: str, value: str) -> str:
    """A Teams channel conversation id. Teams' "Get link to channel" holds it percent-encoded
    (19%3a...%40thread.tacv2) and docs/teams.md says to decode it: a pasted encoded one is
    decoded here. That is safe because a real id never holds a '%', so decoding cannot turn one
    id into another, and what it gives must still be a whole id. A ;messageid= suffix (one
    message's reply thread, copied from a log or a message link) is refused: every card would
    go into that thread instead of the channel."""
    if not value:
        return value
    decoded = unquote(value)
    channel, _, suffix = decoded.partition(";")
    if suffix.lower().startswith("messageid="):
        raise SettingsError(
            f"{name}: remove the ;messageid=... part, which names one message's reply thread, "
            "not the channel"
            + (f": set it to {channel}" if CONVERSATION.fullmatch(channel) else "")
        )
    if not CONVERSATION.fullmatch(decoded):
        # Quoted only when it is an attempt at an id or a link: anything else may be a secret
        # pasted into the wrong setting (a Teams app password), and the refusal is logged.
        attempt = TEAMS_ID_ATTEMPT.search(decoded)
        got = repr(value) if attempt else "a value not shown here (it is no Teams id or link)"
        raise SettingsError(
            f"{name}: must be a Teams channel conversation ID like 19:abc123@thread.tacv2 (in "
            f"Teams, Get link to channel: the part after /channel/), got {got}"
        )
    return decoded


def _authority(value: str, tenant: str) -> str:
    if value:
        try:
            https = urlparse(value).scheme == "https"
        except ValueError:  # "Invalid IPv6 URL"
            https = False
        if not https:
            raise SettingsError("TEAMS_AUTHORITY: must be an https URL (msal requires https)")
        return value.rstrip("/")
    return f"https://login.microsoftonline.com/{tenant}" if tenant else ""


def _people(name: str, value: str) -> frozenset[str]:
    """Comma-separated emails or user ids. "U0NURSE; U0OTHER" was taken as one person nobody
    is, and made nobody a manager without a word."""
    people = frozenset(p.strip().lower() for p in value.split(",") if p.strip())
    odd = sorted(p for p in people if re.search(r"[\s;|]", p))
    if odd:
        raise SettingsError(
            f"{name}: separate people with commas, e.g. U0123ABC,lead@nhs.net; got {odd[0]!r}"
        )
    return people


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"TIMEZONE: unknown time zone {value!r}, e.g. Europe/London") from None


def _clock_time(name: str, value: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise SettingsError(f"{name}: must be HH:MM in 24-hour time, got {value!r}")
    return time(int(match[1]), int(match[2]))


# A trust may keep identifiers for less, but below this a value is more likely a typo (9 for
# 90): start-up warns (bot.say_a_short_retention) rather than refuses.
SHORT_RETENTION_DAYS = 30


def _retention_days(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 36500:
        raise SettingsError(
            f"RETENTION_DAYS: must be a whole number of days from 1 to 36500, got {value!r}"
        )
    return int(value)


def _policy_path(value: str) -> Path:
    path = Path(value) if value else HERE / "escalation.toml"
    if not path.is_file():
        raise SettingsError(f"ESCALATION_POLICY: no file at {path}")
    return path


def _wards_file(value: str) -> Path | None:
    if not value:
        default = HERE / "wards.toml"
        return default if default.is_file() else None
    if not Path(value).is_file():
        raise SettingsError(f"WARDS_FILE: no file at {value}")
    return Path(value)


def _public_url(value: str) -> str:
    if not value:
        return value
    try:
        parsed = urlparse(value)
        local = parsed.hostname in ("localhost", "127.0.0.1")
    except ValueError:
        parsed, local = urlparse(""), False
    if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
        raise SettingsError(
            f"PUBLIC_URL: must be the https address families use, e.g. "
            f"https://concern.example.nhs.uk{_got(value)}"
        )
    if parsed.path not in ("", "/") or parsed.query:
        raise SettingsError(
            "PUBLIC_URL: give only the address, e.g. https://concern.example.nhs.uk"
        )
    return value.rstrip("/")


def _phone(name: str, value: str) -> str:
    if value and not re.fullmatch(r"\+?[0-9 ()-]{3,25}", value):
        raise SettingsError(f"{name}: must be a phone number, e.g. 01234 567890, got {value!r}")
    return value


def _proxies(value: str) -> str:
    """FORWARDED_ALLOW_IPS: "*", nothing, or IP addresses and networks. uvicorn keeps a word it
    cannot read as a name that never matches, so a typo would count every visitor as the proxy
    (one hourly allowance for the whole hospital): refused here instead."""
    value = value.strip()
    if value in ("", "*"):
        return value
    for host in (part.strip() for part in value.split(",")):
        if not host:
            continue  # "10.0.0.5," as uvicorn reads it
        try:
            if "/" in host:
                ipaddress.ip_network(host)
            else:
                ipaddress.ip_address(host)
        except ValueError:
            raise SettingsError(
                "FORWARDED_ALLOW_IPS: must be * or IP addresses or networks separated by commas "
                f"(e.g. 10.0.0.5,10.1.0.0/16), got {host!r}"
            ) from None
    return value


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise SettingsError(f"PORT: must be a number from 0 to 65535, got {value!r}")
    return int(value)


def _ca_bundle(values: Mapping[str, str]) -> str:
    """The certificate bundle outbound HTTPS trusts. REQUESTS_CA_BUNDLE wins when both are set,
    as it does inside `requests` (Teams) whatever a session says; each one set must exist."""
    chosen = ""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = values.get(name, "").strip()
        if value:
            if not Path(value).is_file():
                raise SettingsError(f"{name}: no certificate bundle at {value}")
            chosen = value
    return chosen


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def _on_off(name: str, value: str) -> bool:
    if value.lower() not in ("on", "off"):
        raise SettingsError(f"{name}: must be on or off, got {value!r}")
    return value.lower() == "on"


def _log_format(value: str) -> str:
    if value.lower() not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT: must be text or json, got {value!r}")
    return value.lower()
