"""A bounded number of generations and a bounded queue in front of them.

Beyond both bounds a request is refused at once (HTTP 429 with Retry-After)
instead of hanging in gunicorn's accept queue; a queued request that cannot
start within ``queue_timeout`` seconds is refused the same way.
"""

from __future__ import annotations

import math
import threading
import time


class Overloaded(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    def __init__(self, slots: int, queue: int, queue_timeout: float):
        self.slots = slots
        self.queue = queue
        self.queue_timeout = queue_timeout
        self._cond = threading.Condition()
        self.active = 0
        self.waiting = 0
        self._mean_seconds = 1.0

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the running mean generation time."""
        return max(1, min(60, int(math.ceil(self._mean_seconds))))

    def acquire(self) -> None:
        with self._cond:
            if self.active < self.slots and self.waiting == 0:
                self.active += 1
                return
            if self.waiting >= self.queue:
                raise Overloaded(
                    "server busy: %d generations running and %d waiting, the most it takes" % (self.active, self.waiting),
                    self.retry_after(),
                )
            self.waiting += 1
            deadline = time.monotonic() + self.queue_timeout
            try:
                while self.active >= self.slots:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Overloaded("server busy: no generation slot freed within %.0f s" % self.queue_timeout, self.retry_after())
                    self._cond.wait(remaining)
            finally:
                self.waiting -= 1
            self.active += 1

    def release(self, seconds: float) -> None:
        with self._cond:
            self.active -= 1
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * max(seconds, 0.0)
            self._cond.notify()
