"""The change feed: each process learns what the others changed (LISTEN/NOTIFY on PostgreSQL, a poll on SQLite).

Changes are rows of the change log (``storage.changes``), written in the changing transaction. A notification
only says "look"; the log says what. The feed also reads the log when it (re)connects and every
``verify_seconds``, so a notification lost while the connection was down never leaves the process stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from domain.enums import Topic
from storage.changes import ChangeLog
from storage.db import Database
from storage.tables import EventRow
from storage.tail import Position

log = logging.getLogger(__name__)

# Keys that changed; None means "anything may have changed" (history was pruned while this process was away).
Handler = Callable[[frozenset[str] | None], object]
CHANGES_CHANNEL = "frontdesk_changes"
EVENTS_CHANNEL = "frontdesk_events"
# After a notification whose change is not readable yet (an older transaction is still open), look again soon.
HORIZON_RETRY_SECONDS = 0.05
HORIZON_PATIENCE_SECONDS = 2.0


class ChangeFeed:
    """Tails the change log in a background thread and calls the handlers subscribed to each topic.

    Create it before loading the state it keeps current: it starts from the log's newest position at
    construction, so a change committed while the process was loading is applied once the feed starts.
    Handlers run in the feed's thread and must be idempotent (a change may be seen again after a failure).
    """

    def __init__(self, db: Database, changes: ChangeLog, *, poll_seconds: float = 0.5, verify_seconds: float = 5.0,
                 on_events: Callable[[], None] | None = None) -> None:
        self.db = db
        self.changes = changes
        self.poll_seconds = poll_seconds
        self.verify_seconds = verify_seconds
        self.on_events = on_events
        self._handlers: dict[Topic, list[Handler]] = {}
        self._generations: dict[Topic, int] = dict.fromkeys(Topic, 0)
        self._position = changes.newest()
        self._started_at = self._position
        self._last_event_id = self._newest_event_id() if db.dialect != "postgresql" else 0
        self._lock = threading.Lock()  # one catch-up at a time (the thread, or a caller of catch_up)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = db.dialect != "postgresql"

    # --- subscribers ------------------------------------------------------------------------

    def subscribe(self, topic: Topic, handler: Handler) -> None:
        """Call ``handler`` with the changed keys of ``topic`` (from the feed's thread)."""
        self._handlers.setdefault(topic, []).append(handler)

    def generation(self, topic: Topic) -> int:
        """A counter that grows whenever changes of ``topic`` arrive (cheap polling for long-lived readers)."""
        return self._generations[topic]

    @property
    def position(self) -> Position:
        """How far this process has applied the change log."""
        return self._position

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None:
            target = self._run_postgres if self.db.dialect == "postgresql" else self._run_polling
            self._thread = threading.Thread(target=target, name="change-feed", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it notices within a second)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def catch_up(self) -> int:
        """Apply every change after this process's position; returns how many were read.

        When a handler fails (the database went away mid-refresh) the position stays before that batch, so
        the batch is read again next time.
        """
        with self._lock:
            total = 0
            while True:
                batch = self.changes.after(self._position)
                if not batch:
                    return total
                keys: dict[Topic, set[str] | None] = {}
                for change in batch:
                    seen = keys.setdefault(change.topic, set())
                    if seen is not None:
                        if change.key is None:
                            keys[change.topic] = None
                        else:
                            seen.add(change.key)
                for topic, changed in keys.items():
                    self._dispatch(topic, None if changed is None else frozenset(changed))
                self._position = batch[-1].position
                total += len(batch)

    def resync(self) -> None:
        """Tell every handler that anything may have changed."""
        with self._lock:
            for topic in Topic:
                self._dispatch(topic, None)

    def _dispatch(self, topic: Topic, keys: frozenset[str] | None) -> None:
        for handler in self._handlers.get(topic, ()):
            handler(keys)  # a failure propagates: the batch is read again later
        self._generations[topic] += 1

    def _verify_history(self) -> None:
        """After a disconnection: if changes this process never saw were pruned meanwhile, resync everything."""
        oldest = self.changes.oldest()
        if oldest is not None and self._position < oldest and self._position != self._started_at:
            log.warning("the change log was pruned past this process's position; reloading the shared state")
            self.resync()
            self._position = self.changes.newest()

    def _wake_streams(self) -> None:
        if self.on_events is not None:
            self.on_events()

    def _run_polling(self) -> None:
        """SQLite: read the log and the newest event id every ``poll_seconds``."""
        while not self._stop.wait(self.poll_seconds):
            try:
                self.catch_up()
                newest = self._newest_event_id()
                if newest != self._last_event_id:
                    self._last_event_id = newest
                    self._wake_streams()
            except Exception as e:  # the database may be busy or gone; next round
                log.warning("change feed: %s", type(e).__name__)

    def _run_postgres(self) -> None:
        """PostgreSQL: LISTEN on a dedicated connection; reconnect with back-off and check the log each time."""
        import psycopg

        conninfo = make_url(self.db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                    conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    if not self.connected:
                        log.info("change feed: listening")
                    self.connected = True
                    self._verify_history()
                    self.catch_up()  # the version check: whatever changed while not listening
                    self._wake_streams()
                    backoff = 0.5
                    self._listen(conn)
            except Exception as e:  # connection lost or refused: the service keeps serving what it has
                if self._stop.is_set():
                    return
                if self.connected:
                    log.warning("change feed: lost the database connection (%s); reconnecting", type(e).__name__)
                self.connected = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _listen(self, conn: Any) -> None:
        last_check = time.monotonic()
        waiting_until = 0.0  # a notified change not yet readable: look again until then
        while not self._stop.is_set():
            timeout = HORIZON_RETRY_SECONDS if waiting_until else 1.0
            channels = {n.channel for n in conn.notifies(timeout=timeout, stop_after=1)}
            if channels:
                channels |= {n.channel for n in conn.notifies(timeout=0.002)}  # the rest of a burst
            if EVENTS_CHANNEL in channels:
                self._wake_streams()
            now = time.monotonic()
            if CHANGES_CHANNEL in channels or waiting_until or now - last_check >= self.verify_seconds:
                found = self.catch_up()
                last_check = now
                if found:
                    waiting_until = 0.0
                elif CHANGES_CHANNEL in channels:
                    waiting_until = now + HORIZON_PATIENCE_SECONDS
                elif waiting_until and now > waiting_until:
                    waiting_until = 0.0

    def _newest_event_id(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.max(EventRow.id))) or 0)
