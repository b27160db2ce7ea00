"""What a person asked for that cannot be done: each message says why, in words they can act on."""

from __future__ import annotations

from reviews.model import FormErrors


class ServiceError(Exception):
    """Something a person asked for that cannot be done; the message says why."""


class NotFound(ServiceError):
    pass


class NotAllowed(ServiceError):
    pass


class WrongState(ServiceError):
    pass


class BadInput(ServiceError):
    """What was typed cannot be recorded; `errors` names each field (as FormErrors does)."""

    def __init__(self, problems: FormErrors):
        super().__init__(" ".join(problems.errors.values()))
        self.errors = problems.errors
