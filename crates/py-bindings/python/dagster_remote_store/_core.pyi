"""Type stubs for the Rust extension module."""

import builtins
from collections.abc import Iterable
from datetime import datetime, timedelta
from os import PathLike
from typing import Any, Literal, TypedDict, final

from typing_extensions import Buffer, Self, disjoint_base

from .serializers import Serializer

__version__: str
__all__: list[str]
# The asset key and partition keys (one per dimension) an object is stored for.
Owner = tuple[list[str], list[str]]
# What the folder of an object's checksum records adds to its path (`<path>.checksums/crc32c-<hex>`),
# where the checksum is not in the object's own metadata.
CHECKSUM_RECORDS_SUFFIX: str
# What the single checksum sidecar of earlier versions added to its object's path; still read.
CHECKSUM_SIDECAR_SUFFIX: str

@disjoint_base
class Backend:
    """Base of every backend."""

    @property
    def kind(self) -> str: ...

@final
class LocalBackend(Backend):
    def __new__(
        cls,
        root: str | PathLike[str],
        *,
        fsync: bool = False,
    ) -> Self: ...
    @property
    def root(self) -> str: ...

@final
class MemoryBackend(Backend):
    def __new__(cls) -> Self: ...

@final
class S3Backend(Backend):
    def __new__(
        cls,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        region_name: str | None = None,
        virtual_hosted_style: bool = False,
        allow_http: bool = False,
        max_retries: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        timeout: float | None = None,
        retry_timeout: float | None = None,
    ) -> Self: ...

@final
class AzureBackend(Backend):
    def __new__(
        cls,
        container: str,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        connection_string: str | None = None,
        account_url: str | None = None,
        allow_http: bool = False,
        max_retries: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        timeout: float | None = None,
        retry_timeout: float | None = None,
    ) -> Self: ...

@final
class GCSBackend(Backend):
    def __new__(
        cls,
        bucket: str,
        *,
        service_account: str | None = None,
        base_url: str | None = None,
        anonymous: bool = False,
        allow_http: bool = False,
        max_retries: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        timeout: float | None = None,
        retry_timeout: float | None = None,
    ) -> Self: ...

@final
class SFTPBackend(Backend):
    def __new__(
        cls,
        host: str,
        *,
        username: str,
        base_path: str,
        port: int | None = None,
        password: str | None = None,
        private_key: str | None = None,
        passphrase: str | None = None,
        known_hosts: str | PathLike[str] | None = None,
        host_key_fingerprint: str | None = None,
        accept_any_host_key: bool = False,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        keepalive_interval: float | None = None,
        pool_size: int | None = None,
        max_retries: int | None = None,
    ) -> Self: ...

@final
class ObjectWriter:
    """Streams one object as a multipart upload; stored only on `close()`."""

    def write(self, data: Buffer) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def writable(self) -> bool: ...
    def __enter__(self) -> ObjectWriter: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]: ...

@final
class ObjectReader:
    """Streams one object: `read(size)`, `readinto(buffer)`, `readline()`, or iteration over chunks."""

    def read(self, size: int = ...) -> bytes: ...
    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fills `buffer` (any writable, contiguous buffer) as far as the object goes; returns how
        many bytes it filled, 0 at the end. On Linux a buffer of 4 MiB or more is first advised
        onto huge pages (`madvise(MADV_HUGEPAGE)`, as NumPy does for its arrays): filling fresh
        memory 4 KiB page by page costs more than the copy. Contents are never changed by it."""
        ...
    def readline(self) -> bytes: ...
    def readable(self) -> bool: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __iter__(self) -> ObjectReader: ...
    def __next__(self) -> bytes: ...
    def __enter__(self) -> ObjectReader: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]: ...

@final
class FileInfo:
    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def last_modified(self) -> datetime | None: ...

@final
class Store:
    def __new__(cls, backend: Backend, root_path: str = "") -> Self: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def root_path(self) -> str: ...
    def child(self, path: str) -> Store: ...
    def uri(self, path: str) -> str: ...
    def signed_url(self, path: str, expires_in: timedelta | float) -> str | None: ...
    def read_bytes(self, path: str) -> bytes: ...
    def read_range(self, path: str, start: int, end: int) -> bytes: ...
    def write(
        self,
        path: str,
        data: bytes | bytearray,
        *,
        overwrite: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> None: ...
    def read_with_metadata(self, path: str) -> tuple[bytes, dict[str, str]]: ...
    def open_writer(self, path: str, *, overwrite: bool = True) -> ObjectWriter: ...
    def open_reader(self, path: str) -> ObjectReader: ...
    def exists(self, path: str) -> bool: ...
    def head(self, path: str) -> FileInfo: ...
    def delete(self, path: str, *, missing_ok: bool = False) -> None: ...
    # `builtins.list`: in this class, `list` is the method.
    def list(self, prefix: str = "", *, recursive: bool = True) -> builtins.list[str]: ...
    def leftovers(self, prefix: str = "") -> builtins.list[str]: ...
    def clean_up(self, prefix: str = "", *, older_than: timedelta | float) -> builtins.list[str]: ...
    def copy(self, src: str, dst: str, *, overwrite: bool = True) -> None: ...
    def rename(self, src: str, dst: str, *, overwrite: bool = True) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]: ...

@disjoint_base
class BuiltinSerializer:
    @property
    def name(self) -> str: ...
    @property
    def extension(self) -> str: ...
    def serialize(self, obj: Any) -> bytes: ...
    def deserialize(self, data: bytes | bytearray) -> Any: ...

@final
class PickleSerializer(BuiltinSerializer):
    """Python's pickle (``.pkl``). With ``allowed_globals`` (``"module.Name"``, ``"package.*"``,
    ``"@data"``), loads import and call only what it names; see ``serializers.RestrictedPickle``.
    A pickle that does not load raises ``DeserializationError`` (its ``__cause__`` says why)."""

    def __new__(cls, *, allowed_globals: Iterable[str] | None = None) -> Self: ...
    @property
    def allowed_globals(self) -> tuple[str, ...] | None: ...
    def load(self, store: Store, path: str, *, owner: Owner | None = None) -> Any:
        """The object at ``path``, verified against its checksum (and ``owner``) and unpickled as it is read."""
    def load_many(
        self,
        store: Store,
        paths: list[str],
        *,
        missing: Any = None,
        max_concurrency: int = ...,
        owners: list[Owner | None] | None = None,
    ) -> list[Any]:
        """The objects at ``paths``, fetched concurrently; ``missing`` stands in for absent ones."""

@final
class JsonSerializer(BuiltinSerializer):
    def __new__(cls) -> Self: ...

@final
class ParquetSerializer(BuiltinSerializer):
    """Parquet (``.parquet``), encoded and decoded in Rust.

    Writes polars and pandas DataFrames, pyarrow Tables and RecordBatchReaders, and any
    object with ``__arrow_c_stream__`` or ``to_arrow()``. A polars LazyFrame runs as a streaming
    query whose batches are encoded as polars yields them, so the table is never whole in memory
    (one with categorical, enum or null columns is collected first). pandas needs
    pyarrow; polars does not. The writing library is recorded in the file's key-value
    metadata (``dagster_remote_store.library``) and ``deserialize`` returns that library's
    table (a pyarrow Table for other writers) unless ``into`` asks for another. A missing
    library raises ImportError naming what to ``pip install``; a non-table, TypeError.
    """

    def __new__(cls, compression: Literal["zstd", "snappy", "none"] = "zstd") -> Self: ...
    @property
    def compression(self) -> Literal["zstd", "snappy", "none"]: ...
    def deserialize(
        self,
        data: bytes | bytearray,
        into: Literal["polars", "polars_lazy", "pandas", "pyarrow"] | None = None,
    ) -> Any: ...
    def write_to(self, store: Store, path: str, obj: Any, *, owner: Owner | None = None) -> dict[str, Any]: ...
    @staticmethod
    def describe(data: bytes | bytearray) -> ParquetDescription: ...

class ParquetDescription(TypedDict):
    """What ``ParquetSerializer.describe`` reads from a Parquet footer."""

    row_count: int
    columns: list[tuple[str, str]]
    compression: str | None
    library: str | None

def serializer_names() -> list[str]: ...

@final
class IoManagerCore:
    def __new__(
        cls, store: Store, serializer: str | Serializer, *, max_concurrency: int = ..., extension: str | None = None
    ) -> Self: ...
    @property
    def extension(self) -> str: ...
    @property
    def serializer_name(self) -> str: ...
    def path(self, asset_key: list[str], partition: list[str]) -> str: ...
    def handle_output(
        self, path: str, obj: Any, *, owner: Owner | None = None, run_id: str | None = None
    ) -> dict[str, Any]: ...
    def resolve(self, paths: list[str], *, pins: list[str | None] | None = None) -> list[str]: ...
    def plan_retention(
        self,
        path: str,
        *,
        keep_last: int | None = None,
        keep_for: float | None = None,
        unfinished_runs: list[str] = ...,
        readers_since: float | None = None,
        pinned: list[str] = ...,
        grace: float = 0.0,
    ) -> dict[str, Any]: ...
    def plan_wipe(
        self,
        path: str,
        *,
        wiped_at: float,
        owner: Owner | None = None,
        unfinished_runs: list[str] = ...,
        readers_since: float | None = None,
        pinned: list[str] = ...,
        grace: float = 0.0,
    ) -> dict[str, Any]: ...
    def delete_paths(self, paths: list[str]) -> int: ...
    def open_output(self, path: str, *, owner: Owner | None = None, run_id: str | None = None) -> OutputWriter: ...
    def open_ranged(self, path: str, *, owner: Owner | None = None) -> RangedReader: ...
    def download(self, path: str, local: str, *, owner: Owner | None = None) -> int: ...
    def load_input(self, path: str, *, owner: Owner | None = None) -> Any: ...
    def load_many(
        self, paths: list[str], *, missing: Any = None, owners: list[Owner | None] | None = None
    ) -> list[Any]: ...
    def load_tables(
        self,
        paths: list[str],
        *,
        into: str | None = None,
        missing: Any = None,
        owners: list[Owner | None] | None = None,
        columns: list[str] | None = None,
    ) -> list[Any]: ...
    def uri(self, path: str) -> str: ...

@final
class OutputWriter:
    """An output written as a stream: ``write`` pieces, then ``close()`` stores them."""

    def write(self, data: Buffer) -> int: ...
    def close(self) -> dict[str, Any]: ...
    def abort(self) -> None: ...

@final
class RangedReader:
    """A stored output opened for verified reads at any offset."""

    @property
    def size(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def fetched(self) -> int: ...
    def read_at(self, offset: int, size: int) -> bytes: ...

def foreign_store(obj: Any) -> Store:
    """A Store over a remote-store ``Store``, or any object with its ``read_bytes``, ``write``,
    ``get_file_info``, ``list_files`` and ``delete`` methods."""

@final
class Secret:
    """A credential: prints as ``Secret('***')`` / ``***``; ``reveal()`` gives the value."""

    def __new__(cls, value: str) -> Self: ...
    def reveal(self) -> str: ...

def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` (dicts and lists at any depth) with credential options shown as ``"***"``."""

@final
class Registry:
    """Named backends and stores from one config: a dict, or a TOML or JSON file."""

    def __new__(cls, config: dict[str, Any], *, context: str | None = None) -> Self: ...
    @staticmethod
    def from_file(path: str | PathLike[str]) -> Registry: ...
    @property
    def store_names(self) -> list[str]: ...
    def backend_type(self, name: str) -> str: ...
    def get_store(self, name: str, *, root_path: str = "") -> Store: ...
    def close(self) -> None: ...
    def __enter__(self) -> Registry: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]: ...
