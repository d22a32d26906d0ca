"""An in-memory ``nlu.intent.ModelFiles`` for fast tests (the SQL one passes the same contract suite)."""

from __future__ import annotations


class MemoryModelFiles:
    """Model files in a dict, newest first by insertion."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def get(self, version: str) -> bytes | None:
        return self._files.get(version)

    def put(self, version: str, data: bytes) -> None:
        self._files.pop(version, None)
        self._files[version] = data

    def delete(self, version: str) -> bool:
        return self._files.pop(version, None) is not None

    def versions(self) -> list[str]:
        return list(reversed(self._files))
