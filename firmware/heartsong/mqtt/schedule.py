"""When a state document is published: on a change that matters, else every interval.

Home Assistant automations react to the stress state and to the controls ("dim the
lights when stress rises", a dashboard showing the mode just chosen), so a change of one
of :data:`CHANGE_KEYS` is published at once; the slowly varying metrics go out at most
every ``mqtt.publish_interval_s`` (default 5 s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from heartsong.errors import InputDataError

__all__ = ["CHANGE_KEYS", "PublishSchedule"]

#: State keys whose change is published without waiting for the interval.
CHANGE_KEYS: Final = (
    "stress_state", "source", "mode", "soundscape", "playing", "volume_db", "sleep_timer_min",
)


class PublishSchedule:
    """Decides whether a state document is due.

    Parameters
    ----------
    interval_s:
        Longest time between documents, in seconds (> 0).
    """

    def __init__(self, interval_s: float) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise InputDataError("mqtt.publish_interval_s", "a positive number of seconds",
                                 interval_s)
        self.interval_s = float(interval_s)
        self._last_t_s: float | None = None
        self._last_key: tuple[object, ...] | None = None

    def due(self, doc: Mapping[str, object], now_s: float) -> bool:
        """True when ``doc`` should be published at monotonic time ``now_s`` (seconds).

        Returning True records the document as published.
        """
        key = tuple(doc.get(k) for k in CHANGE_KEYS)
        # A hundredth of an interval of slack: updates on a 5 s tick are not skipped
        # because a timer fired a few milliseconds early.
        elapsed_ok = (self._last_t_s is None
                      or now_s - self._last_t_s >= self.interval_s * 0.99)
        if not elapsed_ok and key == self._last_key:
            return False
        self._last_t_s = now_s
        self._last_key = key
        return True
