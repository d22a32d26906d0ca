"""Channels: translate platform traffic into inbound messages and bot replies back (web chat, Slack, Telegram)."""
