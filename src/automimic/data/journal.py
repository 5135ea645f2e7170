"""A rollback journal that makes appends to one HDF5 file survive a killed process.

HDF5 updates metadata in place, so a writer killed half-way through an append can leave a file
that no longer opens, losing every episode already in it. :class:`JournaledFile` is the file object
h5py writes through: before any byte that existed when the append began is overwritten, the old
bytes go to ``<file>.journal``. The journal is deleted only after the append is complete. If it is
still there at the next open, the writer died mid-append, and :func:`rollback` restores the file to
exactly its state before that append (old bytes back, new tail cut off).

Bytes past the original end of file need no journal: rolling back truncates them. The journal is
written before the data it protects, unbuffered, so a journal record that is cut short means its
overwrite never happened. This protects against killed processes (the OS keeps what was written);
against power loss call :meth:`JournaledFile.commit` with ``durable=True`` to fsync.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

_MAGIC = b"AMJRNL01"
_HEADER = struct.Struct("<8sQ")  # magic, original file size
_RECORD = struct.Struct("<QQ")  # offset, length (followed by `length` old bytes)


def journal_path(path: str | os.PathLike) -> Path:
    """Where the journal of ``path`` lives."""
    return Path(f"{os.fspath(path)}.journal")


class JournaledFile(io.RawIOBase):
    """Random-access binary file that journals overwrites of pre-existing bytes (for h5py's fileobj driver)."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self._path = Path(path)
        exists = self._path.exists()
        self._file = open(self._path, "r+b" if exists else "w+b", buffering=0)
        self._original_size = os.fstat(self._file.fileno()).st_size
        self._journal = open(journal_path(self._path), "wb", buffering=0)
        self._journal.write(_HEADER.pack(_MAGIC, self._original_size))
        self._pos = 0

    # io.RawIOBase protocol -------------------------------------------------------------------
    def readable(self) -> bool:
        """Always readable."""
        return True

    def writable(self) -> bool:
        """Always writable."""
        return True

    def seekable(self) -> bool:
        """Random access."""
        return True

    def tell(self) -> int:
        """Current offset."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the offset (whence as in ``io``)."""
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = os.fstat(self._file.fileno()).st_size + offset
        return self._pos

    def readinto(self, buffer) -> int:
        """Read at the offset into ``buffer``."""
        data = os.pread(self._file.fileno(), len(buffer), self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def write(self, data) -> int:
        """Write at the offset, journaling any pre-existing bytes it overwrites first."""
        data = bytes(data)
        self._save_old(self._pos, self._pos + len(data))
        written = os.pwrite(self._file.fileno(), data, self._pos)
        self._pos += written
        return written

    def truncate(self, size: int | None = None) -> int:
        """Cut the file at ``size``, journaling the pre-existing bytes that would be lost."""
        size = self._pos if size is None else size
        self._save_old(size, self._original_size)
        os.ftruncate(self._file.fileno(), size)
        return size

    def flush(self) -> None:
        """Nothing to do: writes are unbuffered, so every write already reached the OS."""

    # journaling --------------------------------------------------------------------------------
    def _save_old(self, start: int, end: int) -> None:
        end = min(end, self._original_size)
        if start >= end:
            return
        old = os.pread(self._file.fileno(), end - start, start)
        self._journal.write(_RECORD.pack(start, len(old)) + old)

    def commit(self, durable: bool = False) -> None:
        """The append is complete: close the file and drop the journal (fsync first if ``durable``)."""
        if durable:
            os.fsync(self._file.fileno())
        self._file.close()
        self._journal.close()
        os.unlink(journal_path(self._path))
        super().close()

    def abort(self) -> None:
        """Undo everything written since opening (used when the append raised an exception)."""
        self._file.close()
        self._journal.close()
        rollback(self._path)
        super().close()


def rollback(path: str | os.PathLike) -> bool:
    """Restore ``path`` to its state before an interrupted append; return whether there was one."""
    jpath = journal_path(path)
    if not jpath.exists():
        return False
    raw = jpath.read_bytes()
    if len(raw) < _HEADER.size:
        # The journal header is written before any data, so the file was never touched.
        jpath.unlink()
        return True
    magic, original_size = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        raise ValueError(f"{jpath}: not an automimic journal; move it away to open {path}")
    records = []
    offset = _HEADER.size
    while offset + _RECORD.size <= len(raw):
        start, length = _RECORD.unpack_from(raw, offset)
        body = raw[offset + _RECORD.size: offset + _RECORD.size + length]
        if len(body) < length:
            break  # torn record: its overwrite never happened
        records.append((start, body))
        offset += _RECORD.size + length
    with open(path, "r+b", buffering=0) as f:
        # Reverse order: the oldest saved copy of a region is applied last and wins.
        for start, body in reversed(records):
            os.pwrite(f.fileno(), body, start)
        os.ftruncate(f.fileno(), original_size)
    if original_size == 0:
        os.unlink(path)
    jpath.unlink()
    return True
