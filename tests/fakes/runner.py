"""Serve an ASGI app with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_in_thread(app: Any, name: str, start_timeout: float = 30.0) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:<port>``); the server stops when the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none",
                            loop="asyncio", access_log=False,
                            timeout_keep_alive=600)  # clients reuse connections; no idle-close race
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            raise RuntimeError(f"the {name} server did not start")
        thread.join(0.02)  # returns at once if the thread died
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
