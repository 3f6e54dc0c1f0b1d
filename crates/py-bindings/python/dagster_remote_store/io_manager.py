"""The Dagster IO manager: reads Dagster's context, lets the Rust core do the I/O."""

from __future__ import annotations

import collections.abc
import hashlib
import posixpath
import types
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union, cast

from dagster import (
    DagsterInvariantViolationError,
    DataVersion,
    IdentityPartitionMapping,
    InputContext,
    IOManager,
    LastPartitionMapping,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    TimeWindowPartitionMapping,
    __version__ as dagster_version,
)

from ._core import IoManagerCore, ParquetSerializer, PickleSerializer, Store, foreign_store
from .errors import DeserializationError, InvalidConfig, NotFound
from .files import LocalCopies, ObjectFile, file_kind, is_stream, store_stream
from .serializers import Serializer
from .versions import Retention

if TYPE_CHECKING:
    # A type alias of the stub only: the extension module has no `Owner`.
    from ._core import Owner

__all__ = ["dagster_io_manager", "remote_store_io_manager"]

_DEFAULT_MAX_CONCURRENCY = 16
# Stands for a missing partition in concurrent loads, where None is a stored value.
_MISSING = object()


def remote_store_io_manager(
    store: Any,
    serializer: Union[str, Serializer] = "pickle",
    *,
    max_concurrency: int = _DEFAULT_MAX_CONCURRENCY,
    extension: str | None = None,
    allowed_pickle_globals: Iterable[str] | None = None,
    versioned: bool = False,
    retention: Retention | None = None,
) -> IOManager:
    """A Dagster IO manager that keeps outputs in ``store``.

    ``serializer`` is ``"pickle"`` (default, ``.pkl``), ``"json"`` (``.json``),
    ``"parquet"`` (``.parquet``, tables: polars, pandas, pyarrow; loaded as the
    input's annotation asks), ``"parquet-dataset"`` (a folder of Parquet parts with a
    manifest, see :func:`dagster_dataset_io_manager`), ``"bytes"`` (no extension: bytes
    as they are, and files) or any object with ``extension``,
    ``serialize(obj) -> bytes`` and ``deserialize(data)``. Asset ``["foo", "bar"]`` is stored at
    ``foo/bar.pkl``, its partition ``"2026-01"`` at ``foo/bar/2026-01.pkl``;
    ``extension`` (``".pickle"``, or ``""`` for none) replaces the serializer's.
    Several partitions of one input load concurrently, at most
    ``max_concurrency`` at a time.

    ``allowed_pickle_globals`` (pickle only) restricts what a load may import and
    call to the classes and functions it names, as ``PickleSerializer(allowed_globals=...)``
    does: ``["@data", "mypackage.*"]``. A stored object that does not load raises
    ``DeserializationError`` naming the asset, partition and path.

    ``versioned=True`` writes every materialization once, under a version of its own
    (``foo/bar.pkl.versions/<version>.pkl``), and moves a pointer
    (``foo/bar.pkl.versions/current.json``) to it by compare-and-swap: a run never
    replaces what another run reads, and an input can load a past version with
    ``AssetIn(metadata={"version": "<version>"})`` (the ``version`` entry of that
    materialization's metadata). ``retention`` says which versions
    :func:`plan_cleanup` and :func:`cleanup_sensor` delete.

    An output that is a ``pathlib.Path`` (a file or a folder), a binary file object or an
    iterator of ``bytes`` is streamed in, whatever the serializer; an input annotated as a
    binary file (``io.BufferedReader``, ``typing.BinaryIO``) loads as an :class:`ObjectFile`
    read lazily, one annotated ``pathlib.Path`` as a local copy (see
    :mod:`dagster_remote_store.files`).

    ``store`` is a :class:`Store`, or a remote-store ``Store`` (any object with its
    ``read_bytes``, ``write``, ``get_file_info``, ``list_files`` and ``delete``),
    used through Python: slower, same behaviour.

    The caller owns ``store``: the IO manager never closes it.
    """
    if retention is not None and not versioned:
        raise InvalidConfig("retention= applies to versions: give versioned=True too")
    if not isinstance(store, Store):
        if versioned:
            raise InvalidConfig(
                "versioned=True needs conditional writes, which a store used through Python (a remote-store "
                "Store) does not have; give a dagster_remote_store Store"
            )
        store = foreign_store(store)
    if isinstance(serializer, str) and serializer == "parquet-dataset":
        from .datasets import dagster_dataset_io_manager

        if extension is not None or allowed_pickle_globals is not None or versioned:
            raise InvalidConfig("parquet-dataset takes neither extension=, allowed_pickle_globals= nor versioned=")
        return dagster_dataset_io_manager(store, max_concurrency=max_concurrency)
    return _RemoteStoreIOManagerImpl(
        store,
        serializer,
        max_concurrency=max_concurrency,
        extension=extension,
        allowed_pickle_globals=allowed_pickle_globals,
        versioned=versioned,
        retention=retention,
    )


# The name remote-store's Dagster extension exports, for teams switching by import.
dagster_io_manager = remote_store_io_manager


class _RemoteStoreIOManagerImpl(IOManager):
    def __init__(
        self,
        store: Store,
        serializer: Union[str, Serializer],
        *,
        max_concurrency: int,
        extension: str | None,
        allowed_pickle_globals: Iterable[str] | None,
        versioned: bool = False,
        retention: Retention | None = None,
    ) -> None:
        self._store = store
        self.versioned = versioned
        self.retention = retention
        self._max_concurrency = max_concurrency
        # Pickles load through the serializer, which holds the allow-list of globals.
        self._pickle = _pickle_serializer(serializer, allowed_pickle_globals)
        core_serializer = "pickle" if self._pickle is not None else serializer
        self._core = IoManagerCore(store, core_serializer, max_concurrency=max_concurrency, extension=extension)
        # Tables load as the input's annotation asks (polars, pandas, pyarrow).
        self._tables = serializer == "parquet" or isinstance(serializer, ParquetSerializer)
        self._local_copies = LocalCopies(self)

    def __repr__(self) -> str:
        versioned = ", versioned=True" if self.versioned else ""
        return f"remote_store_io_manager({self._store!r}, serializer={self._core.serializer_name!r}{versioned})"

    @property
    def core(self) -> IoManagerCore:
        """The Rust core: paths, writes, loads and version plans."""
        return self._core

    @property
    def storage_kind(self) -> str | None:
        """The backend the outputs go to (`"s3"`, `"local"`, ...); None for a store used through
        Python (a remote-store `Store`), whose backend is its own."""
        kind = self._store.backend.kind
        return None if kind == "foreign" else kind

    # Outputs

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None and _is_nothing(context):
            return  # `-> None` / Nothing outputs carry no data to store
        identifier = _identifier(context)
        partitions = _asset_partitions(context)
        if partitions is None or len(partitions) == 1:
            partition = partitions[0] if partitions else None
            written, version = self._write(context, identifier, partition, obj)
            context.add_output_metadata(written)
            _record_data_version(context, version)
            return
        # A run that covers several partitions (a single-run backfill): one object each.
        if not isinstance(obj, collections.abc.Mapping) or set(obj) != set(partitions):
            got = sorted(obj) if isinstance(obj, collections.abc.Mapping) else type(obj).__name__
            raise ValueError(
                f"{_describe(identifier)} runs for {len(partitions)} partitions, so its output must be "
                f"a dict with exactly those partition keys; expected {sorted(partitions)}, got {got}"
            )
        writes = [self._write(context, identifier, key, obj[key]) for key in partitions]
        outputs = [metadata for metadata, _ in writes]
        # Dagster records one data version for all the partitions of a run.
        _record_data_version(context, _digest("\n".join(version for _, version in writes)))
        # Where the run's objects are: the folder that holds them all.
        folder = posixpath.commonpath([output["path"].path for output in outputs])
        context.add_output_metadata(
            {
                "partitions": len(partitions),
                "dagster/uri": MetadataValue.text(self._core.uri(folder)),
                "size_bytes": MetadataValue.int(sum(output["size_bytes"] for output in outputs)),
            }
        )

    def _write(
        self, context: OutputContext, identifier: list[str], partition: str | None, obj: Any
    ) -> tuple[dict[str, Any], str]:
        """Stores `obj` as the output for `partition`; returns the output metadata, and the
        stored content's version (equal for equal bytes)."""
        dimensions = _dimensions(partition) if partition is not None else []
        path, owner = self._core.path(identifier, dimensions), _owner(context, dimensions)
        partitioned = partition is not None
        try:
            written = self._store_output(context, path, obj, owner)
        except TypeError as err:
            if not self._tables:
                raise
            raise TypeError(f"{_describe(identifier)}: {err}") from err
        version = written.get("content_version") or f"{written['checksum']}-{written['size']:016x}"
        if "row_count" not in written:
            return _metadata(written), version
        table = written
        columns = [TableColumn(name=name, type=type_) for name, type_ in _column_types(obj, table)]
        row_count = "dagster/partition_row_count" if partitioned else "dagster/row_count"
        metadata = {
            **_metadata(table),
            row_count: MetadataValue.int(table["row_count"]),
            "dagster/column_schema": MetadataValue.table_schema(TableSchema(columns=columns)),
            "compression": MetadataValue.text(table["compression"] or "none"),
        }
        if "parts" in table:
            metadata["parts"] = MetadataValue.int(table["parts"])
        return metadata, version

    def _store_output(self, context: OutputContext, path: str, obj: Any, owner: Owner | None) -> dict[str, Any]:
        """Stores `obj` at `path` (a new version of it, when versioned); returns what
        `IoManagerCore.handle_output` returns."""
        run_id = _run_id(context) if self.versioned else None
        if is_stream(obj):
            return store_stream(self._core, path, obj, owner=owner, run_id=run_id)
        return self._core.handle_output(path, obj, owner=owner, run_id=run_id)

    # Inputs

    def load_input(self, context: InputContext) -> Any:
        identifier = _identifier(context)
        partitions = _asset_partitions(context)
        if partitions is None:
            return self._load_one(context, identifier, None)
        if len(partitions) == 1 and context.has_partition_key and not _maps_to_several(context):
            # A one-to-one mapping for a partitioned reader: the object itself.
            return self._load_one(context, identifier, partitions[0])
        # Several partitions, a mapping that can yield several (a window clipped
        # at the start of the range still gets a dict), or an unpartitioned
        # reader: {partition_key: object}, fetched concurrently, in partition order.
        paths = {key: self._core.path(identifier, _dimensions(key)) for key in partitions}
        paths = dict(zip(paths, self._resolve(context, list(paths.values()), list(partitions))))
        owners = [_owner(context, _dimensions(key)) for key in partitions]
        # Looked up by an error's path, which may be None.
        partition_at: dict[str | None, str] = {path: key for key, path in paths.items()}
        try:
            if _input_metadata(context).get("allow_missing_partitions"):
                values = self._load_many(context, list(paths.values()), owners, missing=_MISSING)
                loaded = {key: value for key, value in zip(paths, values) if value is not _MISSING}
                return concat_tables(list(loaded.values())) if self._one_table(context) else loaded
            values = self._load_many(context, list(paths.values()), owners)
        except NotFound as missing:
            raise self._not_found(identifier, partition_at.get(missing.path), missing) from missing
        except DeserializationError as err:
            raise _undecodable(identifier, partition_at.get(err.path), err) from (err.__cause__ or err)
        return concat_tables(values) if self._one_table(context) else dict(zip(paths, values))

    def _resolve(self, context: InputContext, paths: list[str], partitions: list[str | None]) -> list[str]:
        """Where the outputs at `paths` (of `partitions`) load from: the versions the input
        pins, else the current ones, when versioned; else `paths` themselves."""
        pins = _pins(context, partitions)
        if not self.versioned:
            if pins is not None:
                raise InvalidConfig(
                    f"input {context.name!r} pins a version, but its IO manager does not keep versions "
                    "(remote_store_io_manager(..., versioned=True))"
                )
            return paths
        return self._core.resolve(paths, pins=pins)

    def _one_table(self, context: InputContext) -> bool:
        """Whether several partitions load as one table: tables, for an input annotated as one
        (`pl.DataFrame`, `pl.LazyFrame`, `pd.DataFrame`, `pa.Table`), not as `dict[str, table]`."""
        if not self._tables:
            return False
        dagster_type = _dagster_type(context)
        annotation = dagster_type.typing_type if dagster_type is not None else None
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = tuple(a for a in typing.get_args(annotation) if a is not type(None))
            annotation = args[0] if len(args) == 1 else None
        return isinstance(annotation, type) and _table_name(annotation) in _TABLE_KINDS

    def _load_file(self, kind: str, path: str, owner: Owner | None) -> Any:
        """The stored object at `path` as a lazily read file (`kind` "file") or a local copy ("path")."""
        if kind == "file":
            return ObjectFile(self._core.open_ranged(path, owner=owner))
        # Named as the asset (or partition) is, without the serializer's extension.
        name = posixpath.basename(path.split(".versions/")[0])
        extension = self._core.extension
        if extension and name.endswith(extension) and len(name) > len(extension):
            name = name[: -len(extension)]
        return self._local_copies.copy(self._core, path, name, owner)

    def _load(self, context: InputContext, path: str, owner: Owner | None) -> Any:
        kind = file_kind(_value_annotation(context))
        if kind is not None:
            return self._load_file(kind, path, owner)
        columns = _columns(context, self._tables)
        if self._pickle is not None:
            return self._pickle.load(self._store, path, owner=owner)
        if not self._tables:
            return self._core.load_input(path, owner=owner)
        [table] = self._core.load_tables([path], into=_table_kind(context), owners=[owner], columns=columns)
        return table

    def _load_many(
        self, context: InputContext, paths: list[str], owners: list[Owner | None], missing: Any = None
    ) -> list[Any]:
        kind = file_kind(_value_annotation(context))
        if kind is not None:
            return [self._load_file_or(kind, path, owner, missing) for path, owner in zip(paths, owners)]
        columns = _columns(context, self._tables)
        if self._pickle is not None:
            return self._pickle.load_many(
                self._store, paths, missing=missing, max_concurrency=self._max_concurrency, owners=owners
            )
        if not self._tables:
            return self._core.load_many(paths, missing=missing, owners=owners)
        into = _table_kind(context)
        return self._core.load_tables(paths, into=into, missing=missing, owners=owners, columns=columns)

    def _load_file_or(self, kind: str, path: str, owner: Owner | None, missing: Any) -> Any:
        """As `_load_file`; a missing object is `missing` when that is `_MISSING`."""
        try:
            return self._load_file(kind, path, owner)
        except NotFound:
            if missing is _MISSING:
                return missing
            raise

    def _load_one(self, context: InputContext, identifier: list[str], partition: str | None) -> Any:
        dimensions = _dimensions(partition) if partition is not None else []
        [path] = self._resolve(context, [self._core.path(identifier, dimensions)], [partition])
        try:
            return self._load(context, path, _owner(context, dimensions))
        except NotFound as missing:
            if _is_optional(context):
                return None  # an `Optional[...]` input of something never stored
            raise self._not_found(identifier, partition, missing) from missing
        except DeserializationError as err:
            raise _undecodable(identifier, partition, err) from (err.__cause__ or err)

    def _not_found(self, identifier: list[str], partition: str | None, missing: NotFound) -> NotFound:
        where = f" partition {partition!r}" if partition is not None else ""
        path = missing.path or ""
        return NotFound(
            f"no stored output for {_describe(identifier)}{where}: nothing at {path!r} "
            f"({self._core.uri(path) if path else self._store!r}); was it materialized to this store?",
            path=missing.path,
            operation="load_input",
            backend=missing.backend,
        )


def _pins(context: InputContext, partitions: list[str | None]) -> list[str | None] | None:
    """The version to load for each of `partitions`, from the input's metadata `version`: one
    version for an input of one object, or a dict of partition key to version; None if it pins none."""
    pinned = _input_metadata(context).get("version")
    if pinned is None:
        return None
    if isinstance(pinned, str) and len(partitions) == 1:
        return [pinned]
    if isinstance(pinned, collections.abc.Mapping) and all(isinstance(v, str) for v in pinned.values()):
        by_partition = cast("collections.abc.Mapping[str, str]", pinned)
        return [by_partition.get(str(key)) if key is not None else None for key in partitions]
    raise InvalidConfig(
        f"input {context.name!r}: metadata 'version' must be a version name (an input of one object) or a dict of "
        f"partition key to version name, not {pinned!r} for {len(partitions)} partitions"
    )


def _run_id(context: OutputContext) -> str:
    """The id of the run that writes the output: versions are named after it."""
    try:
        return context.run_id
    except DagsterInvariantViolationError:
        return "manual"  # a context built by hand without a run


def _pickle_serializer(serializer: Any, allowed_globals: Iterable[str] | None) -> PickleSerializer | None:
    """The pickle serializer that loads go through, with the allow-list; None for other serializers."""
    if isinstance(serializer, PickleSerializer):
        if allowed_globals is None:
            return serializer
        if serializer.allowed_globals is not None:
            raise InvalidConfig("give allowed_pickle_globals= or PickleSerializer(allowed_globals=...), not both")
    elif serializer != "pickle":
        if allowed_globals is None:
            return None
        shown = serializer if isinstance(serializer, str) else type(serializer).__name__
        raise InvalidConfig(f"allowed_pickle_globals= applies to the pickle serializer, not {shown!r}")
    return PickleSerializer() if allowed_globals is None else PickleSerializer(allowed_globals=allowed_globals)


def _undecodable(identifier: list[str], partition: str | None, err: DeserializationError) -> DeserializationError:
    """``err`` with the asset and partition whose stored object did not decode."""
    where = f" partition {partition!r}" if partition is not None else ""
    return DeserializationError(
        f"{_describe(identifier)}{where}: {err}", path=err.path, operation="load_input", backend=err.backend
    )


def _identifier(context: Union[InputContext, OutputContext]) -> list[str]:
    """Asset key segments, or run id / step key / output name for op outputs."""
    if context.has_asset_key:
        return list(context.asset_key.path)
    return list(context.get_identifier())


def _owner(context: Union[InputContext, OutputContext], dimensions: list[str]) -> Owner | None:
    """The asset key and partition an object is stored for, recorded with it so that an
    asset whose path collides with another's is neither loaded nor replaced as the other's."""
    return (list(context.asset_key.path), dimensions) if context.has_asset_key else None


def _asset_partitions(context: Union[InputContext, OutputContext]) -> list[str] | None:
    """The asset partitions this output writes or this input reads (mapped, for inputs)."""
    if context.has_asset_key and context.has_asset_partitions:
        return list(context.asset_partition_keys)
    return None


def _dimensions(partition_key: str) -> list[str]:
    """One path segment per partition dimension, in a stable (sorted) dimension order."""
    by_dimension = getattr(partition_key, "keys_by_dimension", None)
    if by_dimension:
        return [by_dimension[name] for name in sorted(by_dimension)]
    return [partition_key]


def _maps_to_several(context: InputContext) -> bool:
    """Whether the input's declared partition mapping can map one partition to several."""
    mapping = _partition_mapping(context)
    if mapping is None or isinstance(mapping, (IdentityPartitionMapping, LastPartitionMapping)):
        return False
    if isinstance(mapping, TimeWindowPartitionMapping):
        return mapping.start_offset != mapping.end_offset
    return True


def _partition_mapping(context: InputContext) -> Any:
    """The partition mapping the reading asset declares for this input, or None.

    Dagster offers no public way from an input to the asset that reads it, so
    this goes through the step's asset layer, whose method was renamed after
    dagster 1.9. Should these internals move again, loads fail naming them rather than
    fall back to a one-to-one mapping, which would load a clipped time window
    as a bare value instead of ``{partition: value}``.
    """
    try:
        step = context.step_context
    except DagsterInvariantViolationError:
        return None  # built by hand (build_input_context): no run, no declared mapping
    try:
        layer = step.job_def.asset_layer
        # Later dagster spells it get_assets_def_for_node; 1.9, assets_def_for_node.
        # The dagster mypy reads has only the later name.
        find = getattr(layer, "get_assets_def_for_node", None) or layer.assets_def_for_node  # type: ignore[attr-defined]
        assets_def = find(step.node_handle)
        # A plain op reading an asset has no AssetsDefinition, and no mapping.
        return assets_def.get_partition_mapping(context.asset_key) if assets_def is not None else None
    except AttributeError as err:
        raise RuntimeError(
            f"dagster-remote-store cannot read the partition mapping of input {context.name!r} "
            f"from dagster {dagster_version} ({err}); this dagster version is not supported"
        ) from err


def _dagster_type(context: Union[InputContext, OutputContext]) -> Any:
    try:
        return context.dagster_type
    except DagsterInvariantViolationError:  # contexts built by hand in tests may have none
        return None


def _is_nothing(context: OutputContext) -> bool:
    dagster_type = _dagster_type(context)
    return dagster_type is not None and dagster_type.is_nothing


def _input_metadata(context: InputContext) -> dict[str, Any]:
    """The input's definition metadata (`AssetIn(metadata=...)`, `In(metadata=...)`)."""
    return dict(context.definition_metadata or {})


def _columns(context: InputContext, tables: bool) -> list[str] | None:
    """The columns an input asks for (`AssetIn(metadata={"columns": [...]})`), which a Parquet
    load reads alone; `tables` says whether the IO manager stores tables."""
    columns = _input_metadata(context).get("columns")
    if columns is None:
        return None
    names = columns if isinstance(columns, (list, tuple)) else None
    if names is None or not all(isinstance(name, str) for name in names):
        raise InvalidConfig(
            f"input {context.name!r}: metadata 'columns' must be a list of column names, not {columns!r}"
        )
    if not tables:
        raise InvalidConfig(
            f"input {context.name!r}: metadata 'columns' needs the 'parquet' or 'parquet-dataset' serializer; "
            "other objects are read whole"
        )
    return list(names)


def _is_optional(context: InputContext) -> bool:
    """Whether the input is annotated `Optional[...]` / `... | None`."""
    dagster_type = _dagster_type(context)
    if dagster_type is None:
        return False
    annotation = dagster_type.typing_type
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return is_union and type(None) in typing.get_args(annotation)


# Table types an input can ask for, by `module-root.QualifiedName`, as ParquetSerializer names them.
_TABLE_KINDS = {
    "polars.DataFrame": "polars",
    "polars.LazyFrame": "polars_lazy",
    "pandas.DataFrame": "pandas",
    "pyarrow.Table": "pyarrow",
}


def _table_kind(context: InputContext) -> str | None:
    """The table library the input's annotation asks for (also inside `dict[str, ...]` and
    `Optional[...]`); None for no annotation: the library that wrote the table."""
    annotation = _value_annotation(context)
    if not isinstance(annotation, type):
        return None
    return _TABLE_KINDS.get(_table_name(annotation))


def _value_annotation(context: InputContext) -> Any:
    """What the input's annotation asks each loaded object to be: the annotation, inside
    `dict[str, ...]` (several partitions) and `Optional[...]`; None without one."""
    dagster_type = _dagster_type(context)
    annotation = dagster_type.typing_type if dagster_type is not None else None
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            args = tuple(a for a in args if a is not type(None))
            annotation = args[0] if len(args) == 1 else None
        elif isinstance(origin, type) and issubclass(origin, collections.abc.Mapping) and len(args) == 2:
            annotation = args[1]
        else:
            return annotation


def _table_name(annotation: type) -> str:
    """`polars.DataFrame` for `pl.DataFrame`: how `_TABLE_KINDS` names a table type."""
    return f"{annotation.__module__.split('.')[0]}.{annotation.__qualname__}"


def concat_tables(tables: list[Any]) -> Any:
    """One table of `tables` (all of one library: polars, pandas or pyarrow), in order."""
    if len(tables) == 1:
        return tables[0]
    module = type(tables[0]).__module__.split(".")[0]
    if module == "polars":
        import polars as pl

        return pl.concat(tables)
    if module == "pandas":
        import pandas as pd  # type: ignore[import-untyped]

        return pd.concat(tables)
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.concat_tables(tables)


def _record_data_version(context: OutputContext, version: str) -> None:
    """Makes the stored content's `version` the data version Dagster records for this
    materialization, so that an asset materialized again to the same bytes leaves the assets
    downstream of it fresh. Dagster builds the materialization after `handle_output` returns,
    from the data versions its step holds; one the asset set itself (`Output(data_version=...)`,
    `context.set_data_version`) wins."""
    if not context.has_asset_key:
        return
    try:
        step = context.step_context
    except DagsterInvariantViolationError:
        return  # a context built by hand (`build_output_context`): no materialization follows
    if not step.has_data_version(context.asset_key):
        step.set_data_version(context.asset_key, DataVersion(version))


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _describe(identifier: list[str]) -> str:
    return "asset " + "/".join(identifier) if identifier else "output"


def _metadata(written: dict[str, Any]) -> dict[str, Any]:
    """Dagster metadata of a stored object: `path` in the store, `dagster/uri` (Dagster's key for
    where an asset is: `s3://bucket/key`, never a credential), `size_bytes` and `checksum`."""
    # Size and checksum as plain values: Dagster turns them into int and text metadata
    # itself, with less work than MetadataValue.int/.text. The size's unit is in its key, as
    # Dagster has no metadata type for byte sizes, and an int is what the UI plots.
    metadata: dict[str, Any] = {
        "path": MetadataValue.path(written["path"]),
        "dagster/uri": MetadataValue.text(written["uri"]),
        "size_bytes": written["size"],
        "checksum": written["checksum"],
    }
    if "version" in written:
        metadata["version"] = MetadataValue.text(written["version"])
    if "content_type" in written:
        metadata["content_type"] = MetadataValue.text(written["content_type"])
    return metadata


def _column_types(obj: Any, table: dict[str, Any]) -> list[tuple[str, str]]:
    """Each stored column of the table `obj`, named as stored, with its type as the library
    that made `obj` names it: pandas' dtypes (`int64`, `str`, `datetime64[ns, UTC]`; an
    index stored as columns after the others), polars' (`Int64`, `String`) and pyarrow's
    (`int64`, `string`, `timestamp[ns, tz=UTC]`). Any other table shows pyarrow's names of
    the types stored, or Arrow's (`Utf8`) where pyarrow is not installed. `table` is what
    storing `obj` returned: its `columns` and Arrow `schema`."""
    stored = table["columns"]
    library, kind = type(obj).__module__.split(".")[0], type(obj).__name__
    if library == "pandas" and kind == "DataFrame":
        types = [str(dtype) for dtype in obj.dtypes]
        if len(stored) > len(types):  # pyarrow stores an index other than a range after the columns
            types += [str(obj.index.get_level_values(level).dtype) for level in range(obj.index.nlevels)]
    elif library == "polars" and kind in ("DataFrame", "LazyFrame"):
        schema = obj.collect_schema() if kind == "LazyFrame" else obj.schema
        types = [str(dtype) for dtype in schema.values()]
    elif library == "pyarrow" and kind in ("Table", "RecordBatchReader"):
        types = [str(field.type) for field in obj.schema]
    else:
        try:
            import pyarrow as pa  # untyped: mypy says so once per file, ignored in concat_tables
        except ImportError:
            return list(stored)
        types = [str(field.type) for field in pa.schema(table["schema"])]
    if len(types) != len(stored):
        return list(stored)  # never a column shown with another's type
    return [(name, type_) for (name, _), type_ in zip(stored, types)]
