"""A thread-safe call log that tests can wait on, and scripted failures, shared by the fake APIs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """One request a fake API received and what it answered."""

    method: str
    params: dict[str, Any]
    authorized: bool
    status: int  # HTTP status of the answer
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The fake accepted the call."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class Failure:
    """A scripted failure for the next call of ``method``."""

    method: str
    status: int
    reason: str


class CallLog:
    """Every call in arrival order; ``wait_for`` blocks on a condition variable, never a fixed sleep."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._failures: deque[Failure] = deque()
        self._cond = threading.Condition()

    def record(self, call: Call) -> None:
        """Append a call and wake the waiters."""
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def calls(self, method: str | None = None) -> list[Call]:
        """A snapshot, optionally of one method only."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, predicate: Callable[[Call], bool], count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until ``count`` calls match; returns them. Raises AssertionError on timeout."""
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(map(predicate, self._calls)) >= count, timeout)
            matching = [c for c in self._calls if predicate(c)]
        if not ok:
            raise AssertionError(f"expected {count} matching call(s) within {timeout} s, got {len(matching)}: "
                                 f"{[(c.method, c.status) for c in self.calls()]}")
        return matching

    def fail_next(self, method: str, times: int = 1, status: int = 500, reason: str = "Internal Server Error") -> None:
        """Make the next ``times`` calls of ``method`` fail with this HTTP status (200 = a refusal in the body)."""
        with self._cond:
            self._failures.extend(Failure(method, status, reason) for _ in range(times))

    def take_failure(self, method: str) -> Failure | None:
        """The scripted failure for this call, if one is queued for its method."""
        with self._cond:
            for failure in self._failures:
                if failure.method == method:
                    self._failures.remove(failure)
                    return failure
            return None

    def reset(self) -> None:
        """Forget calls and scripted failures."""
        with self._cond:
            self._calls.clear()
            self._failures.clear()
