"""The heart-signal source interface.

A source runs as a task on the appliance's event loop and hands each block it reads
(:class:`~heartsong.events.PpgBlock` or :class:`~heartsong.events.RrBlock`) to a callback
on that loop. Hardware sources whose I/O blocks (I2C) read in a worker thread and hand
blocks over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from heartsong.events import PpgBlock, RrBlock, SourceName

log = logging.getLogger(__name__)

BlockSink = Callable[[PpgBlock | RrBlock], None]


class HeartSource(Protocol):
    """A producer of PPG or RR blocks."""

    name: SourceName

    async def run(self, sink: BlockSink) -> None:
        """Read until cancelled, calling ``sink`` with every block."""
        ...
