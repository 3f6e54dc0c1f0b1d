"""Files and streams as outputs and inputs.

An asset may return a ``pathlib.Path`` (a file, or a folder), a binary file object or an
iterator of ``bytes``: its bytes are streamed into the store as they are read, with the
memory of one multipart part or so, atomically and checksummed like any output. A folder
goes as one tar archive, unpacked again when it is loaded as a ``Path``.

An input annotated as a binary file (``io.BufferedReader``, ``typing.BinaryIO``,
``io.IOBase``, or :class:`ObjectFile`) gets an :class:`ObjectFile`: a seekable file that
fetches only the 1 MiB blocks it reads, each verified, so ``zipfile``, ``tarfile``,
``pyarrow.parquet.ParquetFile`` or PIL read parts of a large object without fetching it
all. One annotated ``pathlib.Path`` gets a verified local copy in a temporary folder the IO
manager owns and removes.
"""

from __future__ import annotations

import collections.abc
import io
import mimetypes
import os
import shutil
import tarfile
import tempfile
import typing
import weakref
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import IoManagerCore, Owner, RangedReader

__all__ = ["ObjectFile"]

# The pax header that marks a tar archive as a folder output, to unpack on loads as a Path.
FOLDER_MARKER = "dagster_remote_store.folder"

# Read from a file this much at a time: one multipart part.
_PIECE = 8 << 20

# Python's own table only (not /etc/mime.types): the same answer on every machine.
_TYPES = mimetypes.MimeTypes()
_MORE_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".gz": "application/gzip",
    ".zst": "application/zstd",
    ".onnx": "application/onnx",
}


def is_stream(obj: Any) -> bool:
    """Whether `obj` is an output whose bytes are streamed: a path, a binary file object, or
    an iterator of bytes (not a list, which is a value)."""
    # An Arrow stream (a RecordBatchReader iterates its batches) is a table, not bytes.
    if isinstance(obj, (str, bytes, bytearray, memoryview)) or hasattr(obj, "__arrow_c_stream__"):
        return False
    return isinstance(obj, (os.PathLike, io.IOBase, collections.abc.Iterator)) or callable(getattr(obj, "read", None))


def store_stream(
    core: IoManagerCore, path: str, obj: Any, *, owner: Owner | None, run_id: str | None
) -> dict[str, Any]:
    """Streams `obj` (see :func:`is_stream`) into the output at `path`; returns what
    `OutputWriter.close` returns, and `content_type` where it is known."""
    writer = core.open_output(path, owner=owner, run_id=run_id)
    try:
        if isinstance(obj, os.PathLike):
            local = Path(os.fspath(obj))
            if local.is_dir():
                _write_folder(local, writer)
            else:
                with local.open("rb") as file:
                    _copy(file, writer)
        elif callable(getattr(obj, "read", None)):
            _copy(obj, writer)
        else:
            for chunk in obj:
                writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    written = writer.close()
    kind = content_type(obj)
    if kind is not None:
        written["content_type"] = kind
    return written


def _copy(file: Any, writer: Any) -> None:
    while piece := file.read(_PIECE):
        if isinstance(piece, str):
            raise TypeError("the file was opened in text mode; open it with 'rb' to store its bytes")
        writer.write(piece)


def _write_folder(folder: Path, writer: Any) -> None:
    """The files under `folder` as a tar stream, marked as a folder output."""
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT, pax_headers={FOLDER_MARKER: "1"}) as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=child.name)


def content_type(obj: Any) -> str | None:
    """The media type of a path or named file output, from its name; a folder's is a tar's."""
    if isinstance(obj, os.PathLike) and Path(os.fspath(obj)).is_dir():
        return "application/x-tar"
    name = os.fspath(obj) if isinstance(obj, os.PathLike) else getattr(obj, "name", None)
    if not isinstance(name, str):
        return None
    kind, encoding = _TYPES.guess_type(name)
    # A compressed file is its compression's type: never a Content-Encoding clients undo.
    if encoding is not None:
        return _MORE_TYPES.get(PurePath(name).suffix.lower())
    return kind or _MORE_TYPES.get(PurePath(name).suffix.lower())


class _RawObject(io.RawIOBase):
    """Reads at the position through a `RangedReader`, which fetches and verifies blocks."""

    def __init__(self, reader: RangedReader) -> None:
        super().__init__()
        self._reader = reader
        self._position = 0
        self.name = reader.name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read_at(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._reader.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


class ObjectFile(io.BufferedReader, typing.BinaryIO):
    """A stored output as a read-only, seekable binary file, read lazily: only the blocks a
    read touches are fetched, each verified against the checksums recorded when it was
    written (a block that changed since raises ``ChecksumMismatch``). ``size`` is the
    object's size; ``name`` its path in the store; ``fetched`` how many bytes its reads
    have fetched from the store so far."""

    def __init__(self, reader: RangedReader) -> None:
        super().__init__(_RawObject(reader), buffer_size=1 << 16)
        self.size = reader.size
        self._reader = reader

    @property
    def fetched(self) -> int:
        return self._reader.fetched


class LocalCopies:
    """Local copies of stored outputs, in a temporary folder removed when its owner (an IO
    manager) is collected or the process ends."""

    def __init__(self, owner: object) -> None:
        self._owner = weakref.ref(owner)
        self._root: str | None = None

    def copy(self, core: IoManagerCore, path: str, name: str, owner: Owner | None) -> Path:
        """A verified local copy of the output at `path`, named `name`: the folder it holds,
        for a folder output."""
        if self._root is None:
            self._root = tempfile.mkdtemp(prefix="dagster-remote-store-")
            owner_object = self._owner()
            if owner_object is not None:
                weakref.finalize(owner_object, shutil.rmtree, self._root, True)
        local = Path(tempfile.mkdtemp(dir=self._root)) / name
        core.download(path, str(local), owner=owner)
        return _unpack_folder(local)


def _unpack_folder(local: Path) -> Path:
    """`local`, or for a folder output's archive, the folder unpacked in its place."""
    try:
        # Opened outside `with`: only a file that is no tar archive is a plain file; a folder's
        # archive that fails to unpack is an error.
        tar = tarfile.open(local, mode="r:")  # noqa: SIM115
    except tarfile.TarError:
        return local
    with tar:
        if (tar.pax_headers or {}).get(FOLDER_MARKER) != "1":
            return local
        folder = local.with_name(local.name + ".unpacking")
        tar.extractall(folder, filter="data")
    local.unlink()
    folder.rename(local)
    return local


def file_kind(annotation: Any) -> str | None:
    """`"file"` for an annotation asking for a binary file, `"path"` for one asking for a
    local path, else None."""
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, PurePath):
        return "path"
    if annotation is typing.BinaryIO or issubclass(annotation, io.IOBase):
        return "file"
    return None
