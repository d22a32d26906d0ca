"""The readers-writer lock guarding the vector index."""

from __future__ import annotations

import threading

import pytest

from knowledge_index.rwlock import ReadWriteLock

pytestmark = pytest.mark.unit


def test_readers_share_and_writers_exclude() -> None:
    lock = ReadWriteLock()
    inside = threading.Event()
    release = threading.Event()
    log: list[str] = []

    def reader() -> None:
        with lock.read():
            inside.set()
            release.wait(5)
            log.append("reader out")

    t = threading.Thread(target=reader)
    t.start()
    assert inside.wait(5)
    with lock.read():  # a second reader gets in while the first holds the lock
        log.append("second reader")

    def writer() -> None:
        with lock.write():
            log.append("writer")

    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert w.is_alive()  # blocked by the first reader
    release.set()
    t.join(5)
    w.join(5)
    assert log == ["second reader", "reader out", "writer"]
