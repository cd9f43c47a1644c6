"""A token bucket: at most ``burst`` events at once and ``rate_per_s`` on average.

The classic traffic-shaping meter (Turner 1986, "New directions in communications (or
which way to the information age?)", IEEE Commun. Mag. 24(10); as used for network
policing, RFC 2697): the bucket holds up to ``burst`` tokens, refills at ``rate_per_s``
tokens per second, and each accepted event takes one token. Time comes from an injected
monotonic clock so tests can step it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from heartsong.errors import InputDataError

__all__ = ["TokenBucket"]


class TokenBucket:
    """Rate limiter; thread-safe.

    Parameters
    ----------
    rate_per_s:
        Sustained rate in events per second (> 0).
    burst:
        Bucket size: events accepted back to back after a quiet spell (>= 1).
    clock:
        Monotonic time in seconds (``time.monotonic`` by default).
    """

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise InputDataError("rate_per_s", "a positive number of events per second",
                                 rate_per_s)
        if burst < 1:
            raise InputDataError("burst", "an integer of at least 1", burst)
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._t_s = clock()
        self._lock = threading.Lock()
        self.refused = 0

    def take(self) -> bool:
        """Take one token if there is one; False (and counted in ``refused``) otherwise."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._t_s)
            self._t_s = now
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self.refused += 1
            return False

    def __repr__(self) -> str:
        return f"TokenBucket({self.rate_per_s:g}/s, burst {self.burst}, refused {self.refused})"
