"""Wake live views (server-sent event streams) when something changed, from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class ChangeNotifier:
    """Writers call :meth:`notify` after committing; async streams ``await wait(timeout)``.

    Streams also poll the event log on a timeout, so changes made by another process still arrive; this
    only makes same-process changes arrive at once.
    """

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self) -> None:
        """Wake every waiting stream."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed; its stream is gone
                loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout: float) -> bool:
        """Sleep until notified or ``timeout`` seconds pass; True when notified."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(entry)
