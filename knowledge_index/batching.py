"""Micro-batching wrapper: concurrent single-message encodes share one model call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from queue import Empty, SimpleQueue

import numpy as np

from knowledge_index.encoder import Encoder

log = logging.getLogger(__name__)


class BatchingEncoder:
    """Wraps an Encoder; calls from many threads are grouped into batches by one worker thread.

    A lone call waits at most ``max_wait_ms`` for company, so latency under light load stays close
    to the model's, while under load throughput approaches the model's batched rate.
    """

    def __init__(self, inner: Encoder, max_batch_size: int = 32, max_wait_ms: float = 2.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._max_batch = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: SimpleQueue[tuple[list[str], Future[np.ndarray]] | None] = SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="encoder-batcher", daemon=True)
        self._thread.start()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._closed:
            raise RuntimeError("encoder is closed")
        if len(texts) >= self._max_batch:
            return self.inner.encode(texts)
        future: Future[np.ndarray] = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def close(self) -> None:
        """Stop the worker; pending calls are finished first."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            size = len(item[0])
            stop = False
            while size < self._max_batch:
                try:
                    nxt = self._queue.get(timeout=self._max_wait) if self._max_wait else self._queue.get_nowait()
                except Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                size += len(nxt[0])
            self._encode_batch(batch)
            if stop:
                return

    def _encode_batch(self, batch: list[tuple[list[str], Future[np.ndarray]]]) -> None:
        texts = [t for part, _ in batch for t in part]
        try:
            vectors = self.inner.encode(texts)
        except BaseException as e:  # hand every caller the failure instead of hanging them
            for _, future in batch:
                future.set_exception(e)
            return
        start = 0
        for part, future in batch:
            future.set_result(vectors[start : start + len(part)])
            start += len(part)
