"""Parquet datasets: a table stored as a folder of Parquet parts with a manifest, laid out as
remote-store 0.33's ``ParquetDatasetStore`` lays them out, so that each loads what the other wrote::

    {key}/part-00000-<write>.parquet ...   the rows, in order
    {key}/manifest.json                    parts, row count, schema hash, compression, run
    {key}/_SUCCESS                         the dataset is complete

A write is published by replacing ``manifest.json``, one atomic object write: a reader sees the
old parts or the new ones, never a mix, and a writer that dies before it leaves the old dataset
loadable. Parts have names of their own per write, so no write touches the parts a reader of
the previous manifest is reading; those are deleted once the new manifest is in place.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from dagster import InputContext, IOManager, OutputContext

from ._core import Store
from .errors import NotFound, RemoteStoreError, SerializationError
from .io_manager import (
    _DEFAULT_MAX_CONCURRENCY,
    _columns,
    _digest,
    _RemoteStoreIOManagerImpl,
    _table_kind,
    concat_tables,
)
from .serializers import ParquetSerializer

if TYPE_CHECKING:
    from ._core import Owner

__all__ = ["DatasetIncomplete", "ManifestCorrupted", "dagster_dataset_io_manager"]

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
# The manifest keys remote-store requires, and the types it checks them for.
_REQUIRED = {
    "dataset_key": str,
    "parts": list,
    "row_count": int,
    "schema_hash": str,
    "compression": str,
    "created_at_utc": str,
}


class DatasetIncomplete(RemoteStoreError):
    """A dataset whose write did not finish (no ``_SUCCESS`` marker), or whose manifest lists a
    part that is not there: it is not loaded."""


class ManifestCorrupted(RemoteStoreError):
    """A dataset's ``manifest.json`` that is not a manifest: invalid JSON, or a required field
    missing or of the wrong type."""


def dagster_dataset_io_manager(
    store: Store,
    *,
    compression: Literal["zstd", "snappy", "none"] = "zstd",
    max_rows_per_part: int | None = None,
    max_concurrency: int = _DEFAULT_MAX_CONCURRENCY,
) -> IOManager:
    """A Dagster IO manager that stores each table output as a Parquet dataset: asset
    ``["foo", "bar"]`` in the folder ``foo/bar``, its partition ``"2026-01"`` in ``foo/bar/2026-01``.

    Tables are those the ``"parquet"`` serializer takes (polars, pandas, pyarrow, anything with
    ``__arrow_c_stream__`` or ``to_arrow()``). With ``max_rows_per_part``, a polars or pandas
    DataFrame or a pyarrow Table is cut into parts of at most that many rows, and a polars
    ``LazyFrame`` or an Arrow stream (a ``pyarrow.RecordBatchReader``) is written part by part
    as its rows come, never held whole: a table larger than memory can be written. Each part is
    written as the ``"parquet"`` serializer writes a table, streamed and with its checksum, at
    most ``max_concurrency`` parts at once; parts must share one schema. Loads
    fetch the parts concurrently (at most ``max_concurrency`` at once), verify them, and give
    what the input's annotation asks for (``pl.DataFrame``, ``pl.LazyFrame``, ``pd.DataFrame``,
    ``pa.Table``), in part order.

    The same as ``remote_store_io_manager(store, serializer="parquet-dataset")``.
    """
    return _DatasetIOManagerImpl(
        store, compression=compression, max_rows_per_part=max_rows_per_part, max_concurrency=max_concurrency
    )


class _DatasetIOManagerImpl(_RemoteStoreIOManagerImpl):
    def __init__(
        self,
        store: Store,
        *,
        compression: Literal["zstd", "snappy", "none"],
        max_rows_per_part: int | None,
        max_concurrency: int,
    ) -> None:
        if max_rows_per_part is not None and max_rows_per_part < 1:
            raise ValueError(f"max_rows_per_part must be 1 or more, got {max_rows_per_part}")
        serializer: Any = ParquetSerializer(compression=compression)
        super().__init__(store, serializer, max_concurrency=max_concurrency, extension="", allowed_pickle_globals=None)
        self._compression = serializer.compression
        self._rows_per_part = max_rows_per_part

    def __repr__(self) -> str:
        return f"dagster_dataset_io_manager({self._store!r}, compression={self._compression!r})"

    def _store_output(self, context: OutputContext, path: str, obj: Any, owner: Owner | None) -> dict[str, Any]:
        """Writes the parts, then publishes them by replacing the manifest, then removes the
        parts the previous manifest listed."""
        previous = _previous_parts(self._store, path)
        parts, written = self._write_parts(path, obj, owner)
        columns = written[0]["columns"]
        manifest = {
            "dataset_key": path,
            "parts": parts,
            "row_count": sum(part["row_count"] for part in written),
            "schema_hash": hashlib.sha256(json.dumps(columns).encode()).hexdigest()[:16],
            "compression": self._compression,
            "created_at_utc": datetime.now(timezone.utc).isoformat(),
            "run_id": context.run_id,
        }
        text = json.dumps(manifest, sort_keys=True, indent=2).encode()
        self._store.write(f"{path}/{MANIFEST}", text)
        if not self._store.exists(f"{path}/{SUCCESS}"):
            self._store.write(f"{path}/{SUCCESS}", b"")
        for name in previous - set(parts):
            self._store.delete(f"{path}/{name}", missing_ok=True)
        return {
            "path": path,
            "uri": self._core.uri(path),
            "size": sum(part["size"] for part in written),
            "checksum": f"sha256:{hashlib.sha256(text).hexdigest()}",
            "row_count": manifest["row_count"],
            "columns": columns,
            "schema": written[0]["schema"],
            "compression": self._compression,
            "parts": len(parts),
            # The manifest changes with every write (its time and run): the content is the parts'.
            "content_version": _digest(json.dumps([columns, [(part["checksum"], part["size"]) for part in written]])),
        }

    def _write_parts(self, path: str, obj: Any, owner: Owner | None) -> tuple[list[str], list[dict[str, Any]]]:
        """Writes `obj`'s parts under names of this write's own, at most `max_concurrency` at
        once (each encodes and uploads with the GIL released); returns their names and what
        each write gave. A failed write, or parts of differing schemas, removes every part
        this write stored: the dataset is left as it was."""
        write = uuid.uuid4().hex[:12]
        names: list[str] = []
        written: list[dict[str, Any]] = []
        try:
            with ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="dataset-part") as pool:
                pending: deque[Future[dict[str, Any]]] = deque()
                for index, part in enumerate(_parts(obj, self._rows_per_part)):
                    names.append(f"part-{index:05d}-{write}.parquet")
                    pending.append(pool.submit(self._core.handle_output, f"{path}/{names[-1]}", part, owner=owner))
                    # Parts in flight stay bounded: a part is taken from `obj` only when one is done.
                    if len(pending) >= self._max_concurrency:
                        written.append(pending.popleft().result())
                written += [future.result() for future in pending]
            for name, part in zip(names, written):
                if part["columns"] != written[0]["columns"]:
                    raise SerializationError(
                        f"the parts of a dataset must have one schema: {name} has columns {part['columns']}, "
                        f"the first part {written[0]['columns']}",
                        path=f"{path}/{name}",
                        operation="handle_output",
                    )
        except BaseException:
            # Best effort: the write's own error is the one to report.
            with suppress(RemoteStoreError):
                for name in names:
                    self._store.delete(f"{path}/{name}", missing_ok=True)
            raise
        return names, written

    def _load(self, context: InputContext, path: str, owner: Owner | None) -> Any:
        [table] = self._load_many(context, [path], [owner])
        return table

    def _load_many(
        self, context: InputContext, paths: list[str], owners: list[Owner | None], missing: Any = None
    ) -> list[Any]:
        # A part can go between reading a manifest and reading the part when a newer write
        # publishes meanwhile: read the manifest again, once.
        try:
            return self._read(context, paths, owners, missing)
        except NotFound as gone:
            if _is_manifest(gone):
                raise
        try:
            return self._read(context, paths, owners, missing)
        except NotFound as gone:
            if _is_manifest(gone):
                raise
            raise DatasetIncomplete(
                f"a dataset's manifest lists {gone.path!r}, which is not there", path=gone.path, operation="load_input"
            ) from gone

    def _read(self, context: InputContext, paths: list[str], owners: list[Owner | None], missing: Any) -> list[Any]:
        manifests = [_manifest(self._store, path, missing is not None) for path in paths]
        present = [(path, owner, parts) for path, owner, parts in zip(paths, owners, manifests) if parts is not None]
        files = [f"{path}/{name}" for path, _, parts in present for name in parts]
        part_owners = [owner for _, owner, parts in present for _ in parts]
        columns, into = _columns(context, tables=True), _table_kind(context)
        if into == "polars_lazy":
            scans = {
                path: self._scan([f"{path}/{name}" for name in parts], owner, columns) for path, owner, parts in present
            }
            return [scans[path] if parts is not None else missing for path, parts in zip(paths, manifests)]
        tables = iter(self._core.load_tables(files, into=into, owners=part_owners, columns=columns))
        loaded = {path: concat_tables([next(tables) for _ in parts]) for path, _, parts in present}
        return [loaded[path] if parts is not None else missing for path, parts in zip(paths, manifests)]

    def _scan(self, files: list[str], owner: Owner | None, columns: list[str] | None) -> Any:
        """A polars LazyFrame over a dataset's parts `files`: each part is fetched, verified and
        decoded only when the query reaches it, one at a time, with only the columns the query
        uses (polars' projection pushdown), and parts after a query's `head` are never read. The
        schema comes from the first part, read once when polars first asks for it."""
        from polars.io.plugins import register_io_source

        first: list[Any] = []  # the first part, read for the schema, until the scan takes it

        def load(file: str, wanted: list[str] | None) -> Any:
            [part] = self._core.load_tables([file], into="polars", owners=[owner], columns=wanted)
            return part

        def schema() -> Any:
            if not first:
                first.append(load(files[0], columns))
            return first[0].schema

        def scan(with_columns: list[str] | None, predicate: Any, n_rows: int | None, _batch_size: int | None) -> Any:
            left = n_rows
            for index, file in enumerate(files):
                if left is not None and left <= 0:
                    return
                if index == 0 and first:
                    part = first.pop()
                    part = part if with_columns is None else part.select(with_columns)
                else:
                    part = load(file, with_columns if with_columns is not None else columns)
                if predicate is not None:
                    part = part.filter(predicate)
                if left is not None:
                    part = part.head(left)
                    left -= part.height
                yield part

        return register_io_source(io_source=scan, schema=schema)


def _is_manifest(err: NotFound) -> bool:
    return err.path is not None and err.path.endswith(MANIFEST)


def _parts(obj: Any, rows: int | None) -> Iterator[Any]:
    """`obj` cut into tables of at most `rows` rows, one after another as they are written: a
    polars LazyFrame runs as a streaming query, an Arrow stream is read batch by batch, so
    neither is held whole. Slices of DataFrames and pyarrow Tables are views. Without `rows`,
    or for any other table, `obj` whole."""
    height = _height(obj)
    if rows is None or (height is not None and height <= rows):
        yield obj
    elif height is not None:
        for start in range(0, height, rows):
            yield obj.iloc[start : start + rows] if hasattr(obj, "iloc") else obj.slice(start, rows)
    elif type(obj).__module__.split(".")[0] == "polars" and type(obj).__name__ == "LazyFrame":
        yield from _at_least_one(obj.collect_batches(chunk_size=rows), lambda: obj.head(0).collect())
    elif hasattr(obj, "__arrow_c_stream__"):
        yield from _arrow_stream_parts(obj, rows)
    else:
        yield obj


def _at_least_one(parts: Iterator[Any], empty: Callable[[], Any]) -> Iterator[Any]:
    """`parts`, or `empty()` where there are none: an empty table is one part with no rows."""
    none = True
    for part in parts:
        none = False
        yield part
    if none:
        yield empty()


def _arrow_stream_parts(stream: Any, rows: int) -> Iterator[Any]:
    """The Arrow stream `stream` as pyarrow Tables of `rows` rows (the last one fewer)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    reader = pa.RecordBatchReader.from_stream(stream)

    def parts() -> Iterator[Any]:
        batches: list[Any] = []
        count = 0
        for batch in reader:
            while batch.num_rows:
                taken = batch.slice(0, rows - count)
                batches.append(taken)
                count += taken.num_rows
                batch = batch.slice(taken.num_rows)
                if count == rows:
                    yield pa.Table.from_batches(batches, reader.schema)
                    batches, count = [], 0
        if batches:
            yield pa.Table.from_batches(batches, reader.schema)

    yield from _at_least_one(parts(), lambda: reader.schema.empty_table())


def _height(obj: Any) -> int | None:
    """The row count of a DataFrame or pyarrow Table, None for other tables."""
    module = type(obj).__module__.split(".")[0]
    if module == "polars" and type(obj).__name__ == "DataFrame":
        return int(obj.height)
    if module == "pandas" and type(obj).__name__ == "DataFrame":
        return len(obj)
    if module == "pyarrow" and type(obj).__name__ == "Table":
        return int(obj.num_rows)
    return None


def _previous_parts(store: Store, path: str) -> set[str]:
    """The parts the dataset at `path` lists now; none if there is no readable manifest."""
    try:
        return set(_parse(store, path)["parts"])
    except (NotFound, ManifestCorrupted):
        return set()


def _manifest(store: Store, path: str, allow_missing: bool) -> list[str] | None:
    """The parts of the complete dataset at `path`; None for a missing one when allowed."""
    try:
        manifest = _parse(store, path)
    except NotFound:
        if allow_missing:
            return None
        raise
    if not store.exists(f"{path}/{SUCCESS}"):
        raise DatasetIncomplete(
            f"the dataset at {path!r} is incomplete: no {SUCCESS} marker (its write did not finish)",
            path=path,
            operation="load_input",
        )
    parts: list[str] = manifest["parts"]
    return parts


def _parse(store: Store, path: str) -> dict[str, Any]:
    where = f"{path}/{MANIFEST}"
    try:
        manifest = json.loads(store.read_bytes(where))
    except ValueError as err:
        raise ManifestCorrupted(f"{where} is not valid JSON: {err}", path=where, operation="load_input") from err
    if not isinstance(manifest, dict):
        raise ManifestCorrupted(f"{where} must hold a JSON object", path=where, operation="load_input")
    for key, expected in _REQUIRED.items():
        value = manifest.get(key)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ManifestCorrupted(
                f"{where}: {key!r} must be {expected.__name__}, got {type(value).__name__}",
                path=where,
                operation="load_input",
            )
    if not all(isinstance(name, str) and name and "/" not in name for name in manifest["parts"]):
        raise ManifestCorrupted(f"{where}: 'parts' must be file names", path=where, operation="load_input")
    return manifest
