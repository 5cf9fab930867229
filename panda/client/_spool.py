"""A bounded on-disk spool that holds outgoing records while the server is away.

Records are JSON lines appended in the order they were sent, and replayed in that
order once the server answers again. Only the sender thread touches a spool.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NEARLY_FULL_FRACTION = 0.8


class Spool:
    """Append records to one file and hand them back, oldest first, for replay.

    When the file reaches ``max_bytes``, records marked droppable (metric points)
    are refused and counted, and one WARNING says so; the others (checkpoint
    registrations, nudge acknowledgements, the run's end) are always kept, since
    they are small and losing one would leave the server's history wrong.
    Nothing already spooled is ever dropped to make room.
    """

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"spool_max_bytes must be > 0, got {max_bytes}")
        self.path = path
        self.max_bytes = max_bytes
        self.dropped_points = 0
        self._size_bytes = 0
        self._replayed_bytes = 0
        self._warned_nearly_full = False
        self._warned_full = False

    @property
    def pending(self) -> bool:
        """Whether records wait in the file for replay."""
        return self._replayed_bytes < self._size_bytes

    def append(self, record: dict[str, Any], *, droppable: bool) -> bool:
        """Write ``record`` at the end; return False if it was refused as full."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        if droppable and self._size_bytes + len(line) > self.max_bytes:
            self._refuse(record.get("count", 0))
            return False

        if self._size_bytes == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(line)
        self._size_bytes += len(line)

        if (
            not self._warned_nearly_full
            and self._size_bytes > NEARLY_FULL_FRACTION * self.max_bytes
        ):
            self._warned_nearly_full = True
            logger.warning(
                "panda spool %s is %d%% full (limit %d bytes); new points will be "
                "dropped once it is full",
                self.path,
                100 * self._size_bytes // self.max_bytes,
                self.max_bytes,
            )
        return True

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(end_offset, record)`` for each record not yet replayed."""
        with self.path.open("rb") as file:
            file.seek(self._replayed_bytes)
            for line in file:
                yield file.tell(), json.loads(line)

    def mark_replayed(self, end_offset: int) -> None:
        """Record that everything before ``end_offset`` reached the server."""
        self._replayed_bytes = end_offset
        if self._replayed_bytes < self._size_bytes:
            return
        self.path.unlink(missing_ok=True)
        if self.dropped_points:
            logger.warning(
                "panda spool %s was full: %d points were dropped during the outage",
                self.path,
                self.dropped_points,
            )
        self._size_bytes = self._replayed_bytes = self.dropped_points = 0
        self._warned_nearly_full = self._warned_full = False

    def close(self) -> None:
        """Leave the file in place if it still holds records, else remove it."""
        if not self.pending:
            self.path.unlink(missing_ok=True)
            return
        logger.warning(
            "panda spool %s keeps %d bytes the server never received",
            self.path,
            self._size_bytes - self._replayed_bytes,
        )

    def _refuse(self, point_count: int) -> None:
        self.dropped_points += point_count
        if not self._warned_full:
            self._warned_full = True
            logger.warning(
                "panda spool %s is full (limit %d bytes): dropping new metric points "
                "until the server is back; checkpoints and nudge acknowledgements "
                "are still kept. Raise spool_max_bytes in panda.init() to keep more",
                self.path,
                self.max_bytes,
            )


def spool_path(spool_dir: Path, label: str) -> Path:
    """Return a spool file name unique to this process."""
    return spool_dir / f"{label}-pid{os.getpid()}.jsonl"
