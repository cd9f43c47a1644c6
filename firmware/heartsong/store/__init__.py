"""The session store: a local history that survives power loss, with export and reports.

* :mod:`~heartsong.store.schema` / :mod:`~heartsong.store.db`: the SQLite file and its
  migrations; :mod:`~heartsong.store.writer`: batched writes on a thread;
* :mod:`~heartsong.store.recorder`: the appliance's adapter;
* :mod:`~heartsong.store.nightly`: session summary and nightly baseline;
* :mod:`~heartsong.store.retention`, :mod:`~heartsong.store.export`,
  :mod:`~heartsong.store.report`: keeping, deleting, exporting and plotting.

Everything stays on the device (``device.state_dir``); matplotlib is imported only by
the report.
"""

from __future__ import annotations

from heartsong.store.db import BaselineRow, SessionRow, Store, db_path
from heartsong.store.recorder import SessionRecorder, summary_for_mqtt
from heartsong.store.writer import StoreWriter

__all__ = [
    "BaselineRow",
    "SessionRecorder",
    "SessionRow",
    "Store",
    "StoreWriter",
    "db_path",
    "summary_for_mqtt",
]
