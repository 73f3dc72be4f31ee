"""Lock-free single-writer rings of fixed-size float64 records in POSIX shared memory.

One process writes, any number read; nobody blocks. Each record slot starts with its sequence number
(index + 1 of the record it holds, -1 while being written); the header holds the count of records
written. A reader copies a slot and accepts it only if the sequence number is the expected one before
and after the copy (a seqlock), so a torn or overwritten record is never returned. A reader that falls
more than `capacity` records behind skips ahead and counts what it lost.

Records are plain float64 vectors: callers pack and unpack their own layout (times are
`time.monotonic()` seconds, which is one clock for all processes on Linux). The writer owns the segment
(`create=True`) and unlinks it on `close()`; readers attach by name (`create=False`).

The segment is a file in /dev/shm mapped with `mmap` rather than `multiprocessing.shared_memory`: before
Python 3.13 every process that attaches a SharedMemory registers it with the resource tracker, which
then unlinks it (with warnings) when that reader exits.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_HEADER = 2  # [records written, spare]
SHM_DIR = Path("/dev/shm")


def unique_name(prefix: str) -> str:
    """A shared-memory name that no other run uses (POSIX names are global on the machine)."""
    return f"a2w_{prefix}_{secrets.token_hex(4)}"


class ShmRing:
    """`capacity` records of `width` float64 values; see the module docstring."""

    def __init__(self, name: str, width: int, capacity: int, create: bool) -> None:
        if width < 1 or capacity < 1:
            raise ValueError(f"ShmRing {name}: width {width} and capacity {capacity} must be >= 1")
        self.name, self.width, self.capacity, self.owner = name, width, capacity, create
        size = 8 * (_HEADER + capacity * (width + 1))
        self.path = SHM_DIR / name
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            elif os.fstat(fd).st_size != size:
                raise ValueError(f"ShmRing {name}: segment is {os.fstat(fd).st_size} bytes, expected {size} "
                                 f"for width {width} and capacity {capacity}")
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        buf = np.ndarray((_HEADER + capacity * (width + 1),), dtype=np.float64, buffer=self._map)
        self._header = buf[:_HEADER]
        self._slots = buf[_HEADER:].reshape(capacity, width + 1)
        # Scalar reads and writes (counts, sequence numbers) through a memoryview: ~10x cheaper than
        # numpy scalar indexing, and the executor does several per tick.
        self._words = memoryview(self._map).cast("d")
        if create:
            buf[:] = 0.0
        self._cursor = 0
        self.lost = 0

    # -- writer ------------------------------------------------------------------------------------
    def write(self, record: NDArray[np.float64]) -> int:
        """Append one record (len == width); returns its index."""
        words = self._words
        index = int(words[0])
        seq = _HEADER + (index % self.capacity) * (self.width + 1)
        words[seq] = -1.0
        self._slots[index % self.capacity, 1:] = record
        words[seq] = index + 1.0
        words[0] = index + 1.0
        return index

    # -- readers -----------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self._words[0])

    def _read(self, index: int, out: NDArray[np.float64]) -> bool:
        seq = _HEADER + (index % self.capacity) * (self.width + 1)
        if self._words[seq] != index + 1:
            return False
        out[:] = self._slots[index % self.capacity, 1:]
        return self._words[seq] == index + 1

    def latest(self, out: NDArray[np.float64] | None = None) -> NDArray[np.float64] | None:
        """The newest complete record (copied into `out` when given), or None before the first."""
        out = np.empty(self.width) if out is None else out
        for _ in range(8):  # a retry only races a concurrent write
            count = self.count
            if count == 0:
                return None
            if self._read(count - 1, out):
                return out
        return None

    def read_new(self) -> list[NDArray[np.float64]]:
        """Every complete record written since the previous call (oldest first)."""
        count = self.count
        if count - self._cursor > self.capacity:
            self.lost += count - self.capacity - self._cursor
            self._cursor = count - self.capacity
        out = []
        while self._cursor < count:
            rec = np.empty(self.width)
            if self._read(self._cursor, rec):
                out.append(rec)
            else:
                self.lost += 1
            self._cursor += 1
        return out

    def skip_to_end(self) -> None:
        """Forget the backlog: the next `read_new` returns only records written after this call."""
        self._cursor = self.count

    def close(self) -> None:
        """Detach; the owner also removes the segment."""
        self._words.release()
        self._header = self._slots = None  # type: ignore[assignment]
        if self.owner:
            self.path.unlink(missing_ok=True)
        with contextlib.suppress(BufferError):  # a numpy view still alive: the OS unmaps it at exit
            self._map.close()
