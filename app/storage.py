"""Report files: where a generated CSV lives until retention deletes it.

The local folder backend (the default, `PARTNERHUB_REPORTS_DIR` or
`<var_dir>/reports`) writes each file under a `.partial/` name and renames it
into place only when the whole file is written, so a reader never sees half a
report and a worker killed midway leaves only a `.partial` file that the
retried job replaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

READ_CHUNK_BYTES = 64 * 1024


class StorageError(RuntimeError):
    """A report file cannot be written or read; the message says which."""


class FileUpload:
    """One file being written: `write` chunks, then `commit` or `abort`."""

    def __init__(self, partial: Path, final: Path) -> None:
        self._partial = partial
        self._final = final
        partial.parent.mkdir(parents=True, exist_ok=True)
        self._out: BinaryIO = partial.open("wb")

    def write(self, chunk: bytes) -> None:
        self._out.write(chunk)

    def commit(self) -> None:
        """Make the file visible under its key (atomic rename on the same disk)."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._partial, self._final)

    def abort(self) -> None:
        self._out.close()
        self._partial.unlink(missing_ok=True)


class LocalStorage:
    """Report files in a local folder (one folder shared by every process)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"storage key {key!r} leaves the reports folder")
        return path

    def partial_path(self, key: str) -> Path:
        return self._path(f".partial/{key}")

    def upload(self, key: str) -> FileUpload:
        """Start writing `key`; any partial file left by an earlier try is replaced."""
        return FileUpload(self.partial_path(key), self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def read(self, key: str) -> Iterator[bytes]:
        """The file's bytes in chunks (a plain iterator: Starlette runs it in a thread)."""
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"report file {key!r} is missing") from None
        with handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self.partial_path(key).unlink(missing_ok=True)


def open_storage(reports_dir: Path) -> LocalStorage:
    return LocalStorage(reports_dir)
