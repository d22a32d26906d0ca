"""Run an app under a real uvicorn server on 127.0.0.1 with a free port, in a thread (for streaming tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI


@contextmanager
def serve(app: FastAPI, start_timeout: float = 120.0) -> Iterator[str]:
    """Yields the base URL; the server (and the app's lifespan) stops when the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="none",
                            loop="asyncio", access_log=False, timeout_keep_alive=600,
                            timeout_graceful_shutdown=2)  # live streams would otherwise hold shutdown
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            pytest.fail("the live server did not start (see the captured log)")
        thread.join(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
