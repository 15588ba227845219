"""Accountability for access to a person's data: which key read (or, later, erased) which customer, when.

One JSON line per call, appended to `TESSERA_SERVE_ACCESS_LOG_PATH` (default `<workspace>/data/audit/access.jsonl`)
and logged: the key's id (never the key), the Tessera customer id, the endpoint and the time. No names, email
addresses or phone numbers: the customer id is Tessera's own pseudonymous key. Every worker appends whole lines
with one `write` on a file opened for appending, so lines of several workers do not interleave.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


class AccessLog:
    """Appends one line per access to a customer's data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, key_id: str | None, customer_id: str, endpoint: str) -> None:
        """Record that the key `key_id` called `endpoint` on the customer, now."""
        line = {
            "at": datetime.now(UTC).isoformat(),
            "key_id": key_id,
            "customer_id": customer_id,
            "endpoint": endpoint,
        }
        data = (json.dumps(line) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        log.info("access: key %s read customer %s (%s)", key_id, customer_id, endpoint)

    def read(self) -> list[dict[str, str | None]]:
        """Every recorded access, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
