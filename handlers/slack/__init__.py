"""Slack: bolt listeners, Block Kit rendering, the sender and the HTTP route."""

from handlers.slack.after_ack import AfterAck
from handlers.slack.app import build_slack_app, slack_routes
from handlers.slack.sender import SlackSender, lookup_slack_id

__all__ = ["AfterAck", "SlackSender", "build_slack_app", "lookup_slack_id", "slack_routes"]
