"""Opening a form for `/rapidreview`: here, or from the bot's sender process.

A slash command's answer shows nothing: the nurse waits for the form, which the bot opens with
one `views.open` call after the ack. That call was a third of the bot's interpreter time under
a burst of commands (35% in a py-spy profile at 50 clients, docs/performance.md), and one
process runs Python on one core at a time, so the answers to other commands and presses waited
behind it. On PostgreSQL the bot has a sender process on its other core (sender_process.py):
the bot hands it what to open, a line down its standard input, and the sender opens the form
and tells the nurse if it could not, as the bot would have.

The bot opens the form itself whenever the sender cannot take it at once
(SenderProcess.hand_over): none running; one that has not said it opens forms (an older sender,
or one without Slack), or not for HAND_OVER_SILENT (hung); one that has not said it is done
with a form handed over more than LINE_LAG ago (Slack slow to answer it, or it is stuck); or its
input full. Every form handed over gets an answer: the sender opens it or tells the nurse
(Slack refused it, did not answer, or it waited past FORM_WAIT for a thread), and if the sender
ends first, the bot tells the nurse the form may not have opened (FormRelay.lost). The bot says
at most once a minute how many forms it opened itself that the sender could not take.

What is handed over is only what the call needs: which form, Slack's trigger (valid for 3 s),
the command's response_url and who typed it. No patient identifier is ever in it; the
response_url, which lets its holder answer the nurse, is never logged (bot.WIRE_LOGGERS keeps
slack_sdk's webhook client from quoting it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from handlers.slack.checkin import checkin_view
from handlers.slack.forms import request_view
from reviews.checkins import last_ward
from reviews.context import Actor, Services
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

LABELS = {"request": "request", "checkin": "check-in"}  # each form, as the log names it
FORMS = tuple(LABELS)
SAID_EVERY = 60.0  # seconds between warnings that the bot opened forms the sender could not take

Tell = Callable[[str], None]  # an ephemeral answer to whoever typed the command
# Seconds a form may wait in the sender before it is opened: Slack's trigger lasts 3 s.
FORM_WAIT = 2.0


@dataclass(frozen=True)
class FormAsked:
    """A form to open for a command: which, Slack's trigger, and whom to tell if it cannot."""

    form: str  # one of FORMS
    trigger_id: str
    response_url: str
    user_id: str

    @classmethod
    def from_command(cls, form: str, command: dict[str, Any]) -> FormAsked:
        return cls(
            form=form,
            trigger_id=str(command.get("trigger_id") or ""),
            response_url=str(command.get("response_url") or ""),
            user_id=str(command.get("user_id") or ""),
        )

    def line(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> FormAsked:
        """ValueError unless `line` is one FormAsked.line()."""
        try:
            fields = json.loads(line)
            asked = cls(**{name: fields[name] for name in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError("not a form to open") from error
        if asked.form not in FORMS or not all(isinstance(v, str) for v in asdict(asked).values()):
            raise ValueError("not a form to open")
        return asked


def open_form(services: Services, client: WebClient, asked: FormAsked, tell: Tell) -> None:
    """Open `asked`'s form; if Slack refuses it (an expired trigger, Slack itself failing),
    `tell` the nurse to try again, and where to turn meanwhile; if Slack does not answer (the
    form may have opened), to try again if no form shows."""
    if asked.form == "checkin":
        by = Actor(platform="slack", user_id=asked.user_id, name="")
        try:
            ward = last_ward(services=services, by=by) or ""
        except DatabaseUnavailable:
            ward = ""  # the form still opens; its submission will say if nothing can be saved
        view = checkin_view(services.wards.names(), ward)
    else:
        view = request_view(services.wards.names())
    try:
        client.views_open(trigger_id=asked.trigger_id, view=view)
    except SlackApiError as error:
        log.warning("%s form not opened: %s", LABELS[asked.form], error.response.get("error"))
        tell(not_opened(services, asked.form))
    except Exception as error:  # noqa: BLE001 - a timeout, a connection lost: still an answer
        log.warning("%s form perhaps not opened: %s", LABELS[asked.form], type(error).__name__)
        tell(perhaps_not_opened(services, asked.form))


def not_opened(services: Services, form: str) -> str:
    if form == "checkin":
        return "The check-in form could not be opened; try /rapidreview checkin again."
    return (
        "The request form could not be opened; try /rapidreview again. "
        f"If the patient is deteriorating: {services.fallback_contact}"
    )


def perhaps_not_opened(services: Services, form: str) -> str:
    if form == "checkin":
        return (
            "The check-in form may not have opened. If you see no form, "
            "try /rapidreview checkin again."
        )
    return (
        "The request form may not have opened. If you see no form, try /rapidreview again. "
        f"If the patient is deteriorating: {services.fallback_contact}"
    )


def teller(client: WebClient, response_url: str) -> Tell:
    """An ephemeral answer through a command's response_url, with `client`'s connection
    settings (its CA bundle, its proxy)."""

    def tell(text: str) -> None:
        webhook = WebhookClient(
            response_url, timeout=client.timeout, ssl=client.ssl, proxy=client.proxy
        )
        webhook.send(text=text, response_type="ephemeral")

    return tell


class FormRelay:
    """Where the bot's listeners open forms: handed to the sender process when `hand_over`
    (set once the sender runs) takes the line, here otherwise."""

    def __init__(self, services: Services, client: WebClient) -> None:
        self.services = services
        self.client = client
        self.hand_over: Callable[[bytes], bool] | None = None
        self._lock = threading.Lock()
        self._kept, self._kept_said = 0, -SAID_EVERY

    def open(self, asked: FormAsked, tell: Tell) -> None:
        hand_over = self.hand_over
        if hand_over is not None:
            if hand_over(asked.line()):
                return
            self._kept_one()
        open_form(self.services, self.client, asked, tell)

    def _kept_one(self) -> None:
        """A form the sender could not take, opened here: said at most once a minute."""
        with self._lock:
            self._kept += 1
            now = time.monotonic()
            if now - self._kept_said < SAID_EVERY:
                return
            count, self._kept, self._kept_said = self._kept, 0, now
        log.warning(
            "this process opened %s form(s) the sender process could not take (starting, hung, "
            "behind with its forms, or not opening forms)",
            count,
        )

    def lost(self, lines: list[bytes]) -> None:
        """Forms handed to a sender that ended before saying they were done: each nurse is
        told the form may not have opened (on a thread: the caller holds the sender's lock)."""
        threading.Thread(target=self._tell_lost, args=(lines,), name="forms-lost").start()

    def _tell_lost(self, lines: list[bytes]) -> None:
        log.warning("%s form(s) handed to the sender process may not have opened", len(lines))
        for line in lines:
            try:
                asked = FormAsked.from_line(line)
                teller(self.client, asked.response_url)(
                    perhaps_not_opened(self.services, asked.form)
                )
            except Exception as error:  # noqa: BLE001 - the next nurse is still told
                log.error(
                    "could not tell a nurse their form may not have opened: %s",
                    type(error).__name__,  # its text may quote the response_url
                )


class FormOpener:
    """The sender process's side: each line its bot hands over, opened on a thread of its own
    with the sender's own client to Slack; a form that waited here past FORM_WAIT (its trigger
    about to expire) is not opened, and the nurse is told to try again."""

    def __init__(self, services: Services, client: WebClient):
        from handlers.slack.app import LISTENER_THREADS  # app imports this module

        self.services = services
        self.client = client
        # As many threads as the bot's listeners, which would otherwise open these forms: each
        # mostly waits on Slack, and a form left waiting for a thread may see its trigger expire.
        self._executor = ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="forms")

    def __call__(self, line: bytes, done: Callable[[], None]) -> None:
        try:
            asked = FormAsked.from_line(line)
        except ValueError:
            log.error("a line from the bot was not a form to open (%s bytes)", len(line))
            done()
            return
        self._executor.submit(self._open, asked, time.monotonic(), done)

    def _open(self, asked: FormAsked, received: float, done: Callable[[], None]) -> None:
        tell = teller(self.client, asked.response_url)
        try:
            if time.monotonic() - received > FORM_WAIT:
                log.warning(
                    "a %s form waited too long in this process to be opened", LABELS[asked.form]
                )
                tell(not_opened(self.services, asked.form))
            else:
                open_form(self.services, self.client, asked, tell)
        except Exception as error:  # noqa: BLE001 - the executor would keep it without a word
            log.error("opening a %s form failed: %s", LABELS[asked.form], type(error).__name__)
        finally:
            done()

    def stop(self) -> None:
        """Wait for the forms under way (the sender's STOP_WITHIN bounds the wait)."""
        self._executor.shutdown(wait=True)
