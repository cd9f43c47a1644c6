"""A sorted buffer for running medians and quantiles over sliding windows.

The window kernels (artifact thresholds, template medians, pulse plausibility) keep the
values of the current window sorted in ``buf[:m]``: one value enters and one leaves per
step, so each step costs O(window) moves instead of a sort. Values are finite floats.
"""

from __future__ import annotations

from numba import njit

from heartsong.events import FloatArray

__all__ = ["_sorted_find", "_sorted_insert", "_sorted_remove", "_sorted_replace"]


@njit(cache=True, nogil=True)
def _sorted_insert(buf: FloatArray, m: int, value: float) -> int:
    """Insert ``value`` into the sorted ``buf[:m]``; return the new count."""
    k = m
    while k > 0 and buf[k - 1] > value:
        buf[k] = buf[k - 1]
        k -= 1
    buf[k] = value
    return m + 1


@njit(cache=True, nogil=True)
def _sorted_find(buf: FloatArray, m: int, value: float) -> int:
    """Index of the first element of the sorted ``buf[:m]`` that is not below ``value``."""
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) // 2
        if buf[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _sorted_remove(buf: FloatArray, m: int, value: float) -> int:
    """Remove one occurrence of ``value`` (present) from the sorted ``buf[:m]``; return
    the new count."""
    for k in range(_sorted_find(buf, m, value), m - 1):
        buf[k] = buf[k + 1]
    return m - 1


@njit(cache=True, nogil=True)
def _sorted_replace(buf: FloatArray, m: int, old: float, new: float) -> None:
    """Replace one occurrence of ``old`` (present) in the sorted ``buf[:m]`` by ``new``.

    Only the values between the two positions move, on average a third of the window
    rather than all of it for a removal followed by an insertion. A window holds a
    hundred values or less: a linear scan finds ``old`` faster than a branchy binary
    search.
    """
    k = 0
    while buf[k] < old:
        k += 1
    if new > old:
        while k + 1 < m and buf[k + 1] < new:
            buf[k] = buf[k + 1]
            k += 1
    else:
        while k > 0 and buf[k - 1] > new:
            buf[k] = buf[k - 1]
            k -= 1
    buf[k] = new
