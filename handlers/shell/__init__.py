"""The local shell: the bot at the keyboard, for trying it without Slack or Teams."""

from handlers.shell.commands import HELP, Shell
from handlers.shell.forms import Cancelled, Question, fill
from handlers.shell.render import ShellSender, render
from handlers.shell.terminal import Terminal
from handlers.shell.trial import SHELL_ROUTE, SHELL_USER, take_free_roles, trial_settings, where

__all__ = [
    "HELP",
    "SHELL_ROUTE",
    "SHELL_USER",
    "Cancelled",
    "Question",
    "Shell",
    "ShellSender",
    "Terminal",
    "fill",
    "render",
    "take_free_roles",
    "trial_settings",
    "where",
]
