"""Fake platform HTTP APIs (Slack Web API, Telegram Bot API) served on 127.0.0.1 for the connector tests."""
