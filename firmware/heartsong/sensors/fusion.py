"""Which heart source feeds the metrics: the preferred one while it is good, with hysteresis.

A chest strap's RR intervals come from an ECG and beat a finger PPG for HRV, so the
strap is normally preferred; the PPG takes over when the strap is lost. A source is
*good* while it reports contact (the strap's sensor-contact bits, the PPG's finger
detection) and has delivered an accepted beat within its staleness limit. The rules:

- the active source that stops being good is replaced at once by the other, if that one
  is good (a strap reporting "no contact" is dropped at the next decision, not after a
  staleness timeout);
- the preferred source takes over again only once it has been good for ``return_after_s``
  without a break, so a strap that keeps slipping does not make the metrics flap between
  sources (hysteresis);
- with no good source the answer is ``"none"``.

The class is pure: it is told what happened (:meth:`SourceFusion.observe`) and asked
(:meth:`SourceFusion.choose`) with times from the caller's clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from heartsong.events import SourceName

__all__ = ["DEFAULT_STALE_S", "RETURN_AFTER_S", "SourceFusion"]

#: A source without an accepted beat for this long is not good, in seconds. The PPG's
#: beats come out in chunks of up to 5 s plus the detector's delay; a strap notifies
#: every second with the beats since its last notification.
DEFAULT_STALE_S: Final[Mapping[SourceName, float]] = {"ble": 5.0, "ppg": 10.0}
#: The preferred source must be good this long before it takes over again, in seconds.
RETURN_AFTER_S: Final = 15.0


class SourceFusion:
    """Chooses the heart source from what each source delivered, with hysteresis.

    Parameters
    ----------
    preferred:
        The source used whenever it is good (``"ble"`` or ``"ppg"``).
    stale_s:
        Per source, seconds without an accepted beat after which it is not good
        (default :data:`DEFAULT_STALE_S`; sources not named use 10 s).
    return_after_s:
        Seconds the preferred source must have been good, without a break, before it
        replaces a good fallback.
    """

    def __init__(
        self,
        preferred: SourceName,
        *,
        stale_s: Mapping[SourceName, float] | None = None,
        return_after_s: float = RETURN_AFTER_S,
    ) -> None:
        if preferred not in ("ble", "ppg"):
            raise ValueError(f"preferred must be 'ble' or 'ppg', got {preferred!r}")
        if not (math.isfinite(return_after_s) and return_after_s >= 0):
            raise ValueError(f"return_after_s must be >= 0 s, got {return_after_s!r}")
        self.preferred: SourceName = preferred
        self._stale: dict[SourceName, float] = dict(DEFAULT_STALE_S)
        for name, seconds in (stale_s or {}).items():
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"stale_s[{name!r}] must be > 0 s, got {seconds!r}")
            self._stale[name] = float(seconds)
        self.return_after_s = float(return_after_s)
        self.active: SourceName = "none"
        self.reason = "no heart source has delivered beats yet"
        self._last_beat: dict[SourceName, float] = {}
        self._contact: dict[SourceName, bool] = {}
        self._good_since: dict[SourceName, float | None] = {}

    def __repr__(self) -> str:
        return f"SourceFusion(active={self.active!r}, preferred={self.preferred!r})"

    def observe(self, source: SourceName, t_s: float, *, beats: int, contact: bool) -> None:
        """Note one block from ``source`` handled at ``t_s`` (clock seconds).

        Parameters
        ----------
        source:
            The source that delivered the block.
        t_s:
            When the block was handled, monotonic seconds.
        beats:
            How many beats the DSP accepted from the block.
        contact:
            The block's contact flag (sensor contact / finger detected).
        """
        self._contact[source] = contact
        if not contact:
            self._good_since[source] = None
            return
        if beats <= 0:
            return
        last = self._last_beat.get(source)
        if last is None or t_s - last > self._stale_of(source):
            self._good_since[source] = t_s  # good again after a break
        elif self._good_since.get(source) is None:
            self._good_since[source] = t_s
        self._last_beat[source] = t_s

    def is_good(self, source: SourceName, now_s: float) -> bool:
        """True when ``source`` reports contact and delivered a beat recently."""
        last = self._last_beat.get(source)
        return (
            self._contact.get(source, False)
            and last is not None
            and now_s - last <= self._stale_of(source)
        )

    def choose(self, now_s: float) -> SourceName:
        """The source whose beats the metrics at ``now_s`` should use (``"none"`` if none)."""
        good = [s for s in (self.preferred, self._other()) if self.is_good(s, now_s)]
        for source in list(self._good_since):
            if source not in good:
                self._good_since[source] = None
        active = self.active
        if self.preferred in good:
            since = self._good_since.get(self.preferred)
            held_s = now_s - since if since is not None else 0.0
            if active != self.preferred and active in good and held_s < self.return_after_s:
                return self._set(active, f"{self.preferred} good for only {held_s:.0f} s")
            return self._set(self.preferred, f"{self.preferred} is good (preferred)")
        if active in good:
            return self._set(active, self._why_not(self.preferred, now_s))
        if good:
            return self._set(good[0], self._why_not(self.preferred, now_s))
        return self._set("none", "no heart source is delivering beats")

    def _set(self, source: SourceName, reason: str) -> SourceName:
        self.active = source
        self.reason = reason
        return source

    def _other(self) -> SourceName:
        return "ppg" if self.preferred == "ble" else "ble"

    def _stale_of(self, source: SourceName) -> float:
        return self._stale.get(source, 10.0)

    def _why_not(self, source: SourceName, now_s: float) -> str:
        if source not in self._contact:
            return f"{source} has not delivered anything"
        if not self._contact[source]:
            return f"{source} reports no contact"
        last = self._last_beat.get(source)
        if last is None:
            return f"{source} has delivered no beats"
        return f"{source} delivered no beat for {now_s - last:.0f} s"
