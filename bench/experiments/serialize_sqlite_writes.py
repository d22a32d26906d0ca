"""Benchmark experiment: queue SQLite write transactions on one in-process lock instead of SQLite's busy handler.

With ``BEGIN IMMEDIATE`` a second writer does not queue: SQLite's busy handler makes it sleep and retry
with growing back-off (1, 2, 5, 10, ... up to 100 ms per sleep), so under concurrency a writer can sleep
long after the lock was freed. Wrapping ``Database.session`` (the write transactions) in a
``threading.RLock`` hands the lock over immediately. Loaded as ``sitecustomize`` (``turn_latency.py
--server-preload``) or in process (``turn_breakdown.py --preload``); the product code stays untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def install() -> None:
    """Wrap ``storage.db.Database.session`` for SQLite databases."""
    try:
        from storage import db as db_module
    except ImportError:
        return
    original = db_module.Database.session
    locks: dict[int, threading.RLock] = {}
    guard = threading.Lock()

    @contextmanager
    def session(self: Any) -> Iterator[Any]:
        if self.dialect != "sqlite":
            with original(self) as s:
                yield s
            return
        with guard:
            lock = locks.setdefault(id(self), threading.RLock())
        with lock, original(self) as s:
            yield s

    db_module.Database.session = session  # type: ignore[method-assign]


install()
