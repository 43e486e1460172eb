"""Resource ids that sort by creation: `<prefix>_<14 hex µs><12 hex random>`.

The time part never repeats or goes backwards within a process, so keyset pagination on
id lists rows in creation order (across replicas: to the clock's precision).
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        now = max(time.time_ns() // 1000, _last + 1)
        _last = now
    return f"{prefix}_{now:014x}{secrets.token_hex(6)}"
