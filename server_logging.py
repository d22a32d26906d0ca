"""Keep third-party loggers that can carry secrets or customer text quiet above DEBUG."""

from __future__ import annotations

import logging

# httpx logs request URLs (Telegram puts the bot token in the path); slack_bolt logs rejected request
# bodies (customer text) at INFO; the rest are only noise at INFO.
NOISY = ("httpx", "httpcore", "telegram", "slack_bolt", "slack_sdk", "sentence_transformers", "alembic", "faiss")


def quiet_third_party_loggers() -> None:
    """Raise those loggers to WARNING unless the operator asked for DEBUG on the root logger."""
    root = logging.getLogger().level
    for name in NOISY:
        logger = logging.getLogger(name)
        if root > logging.DEBUG or root == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` unless the entry point already configured logging (each ``--workers`` process
    builds the app itself and must configure its own)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                            format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    quiet_third_party_loggers()
