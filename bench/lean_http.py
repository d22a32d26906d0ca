"""A lean asyncio HTTP/1.1 client for load generation: keep-alive connections, JSON in and out, nothing else.

httpx costs the load generator 1-4 ms of CPU per request; on a 2-core machine that runs the server too, the
client then takes the cores it is meant to measure (an open loop at 200 msg/s kept 0.8 of a core busy and could
not send on time). This one costs a small fraction of that. It speaks only what the benchmarks need: requests
with a JSON body, responses with Content-Length (no chunked bodies, no redirects, no TLS).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class LeanHTTPError(Exception):
    """The connection failed or the answer could not be read."""


@dataclass
class LeanResponse:
    """Status and body of an answer."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class LeanClient:
    """A pool of keep-alive connections to one ``http://host:port``."""

    def __init__(self, base_url: str, max_connections: int = 64, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def get(self, path: str) -> LeanResponse:
        return await self.request("GET", path)

    async def post(self, path: str, json_body: Any = None, headers: dict[str, str] | None = None) -> LeanResponse:
        return await self.request("POST", path, json_body, headers)

    async def request(self, method: str, path: str, json_body: Any = None,
                      headers: dict[str, str] | None = None) -> LeanResponse:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if json_body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        async with self._slots:
            while True:
                # An idle connection may have been closed by the server's keep-alive timeout: try the next one,
                # and only an error on a new connection is the server's answer.
                fresh = not self._idle
                reader, writer = self._idle.pop() if self._idle else await self._connect()
                try:
                    writer.write(raw)
                    response = await asyncio.wait_for(self._read(reader), self.timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                    writer.close()
                    if fresh:
                        raise LeanHTTPError(f"{type(e).__name__}: {e}") from e
                    continue
                self._idle.append((reader, writer))
                return response

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        except (TimeoutError, OSError) as e:
            raise LeanHTTPError(f"{type(e).__name__}: {e}") from e

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> LeanResponse:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        content = await reader.readexactly(length) if length else b""
        return LeanResponse(status, content)

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
