"""Type stubs for the Rust extension module."""

from datetime import datetime
from os import PathLike
from typing import Any, Literal, TypedDict

from .serializers import Serializer

__version__: str

class Backend:
    """Base of every backend."""

    @property
    def kind(self) -> str: ...

class LocalBackend(Backend):
    def __init__(self, root: str | PathLike[str], *, fsync: bool = False) -> None: ...
    @property
    def root(self) -> str: ...

class MemoryBackend(Backend):
    def __init__(self) -> None: ...

class S3Backend(Backend):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        region_name: str | None = None,
        virtual_hosted_style: bool = False,
        allow_http: bool = False,
        max_retries: int = 5,
        connect_timeout: float = 5.0,
        timeout: float = 300.0,
        retry_timeout: float = 180.0,
    ) -> None: ...

class AzureBackend(Backend):
    def __init__(
        self,
        container: str,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        connection_string: str | None = None,
        account_url: str | None = None,
        allow_http: bool = False,
        max_retries: int = 5,
        connect_timeout: float = 5.0,
        timeout: float = 300.0,
        retry_timeout: float = 180.0,
    ) -> None: ...

class GCSBackend(Backend):
    def __init__(
        self,
        bucket: str,
        *,
        service_account: str | None = None,
        base_url: str | None = None,
        anonymous: bool = False,
        allow_http: bool = False,
        max_retries: int = 5,
        connect_timeout: float = 5.0,
        timeout: float = 300.0,
        retry_timeout: float = 180.0,
    ) -> None: ...

class SFTPBackend(Backend):
    def __init__(
        self,
        host: str,
        *,
        username: str,
        base_path: str,
        port: int = 22,
        password: str | None = None,
        private_key: str | None = None,
        passphrase: str | None = None,
        known_hosts: str | PathLike[str] | None = None,
        host_key_fingerprint: str | None = None,
        accept_any_host_key: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        keepalive_interval: float = 30.0,
        pool_size: int = 4,
        max_retries: int = 3,
    ) -> None: ...

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

class Store:
    def __init__(self, backend: Backend, root_path: str = "") -> None: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def root_path(self) -> str: ...
    def child(self, path: str) -> Store: ...
    def uri(self, path: str) -> str: ...
    def read_bytes(self, path: str) -> bytes: ...
    def read_range(self, path: str, start: int, end: int) -> bytes: ...
    def write(self, path: str, data: bytes | bytearray, *, overwrite: bool = True) -> None: ...
    def exists(self, path: str) -> bool: ...
    def head(self, path: str) -> FileInfo: ...
    def delete(self, path: str, *, missing_ok: bool = False) -> None: ...
    def list(self, prefix: str = "", *, recursive: bool = True) -> list[str]: ...
    def copy(self, src: str, dst: str, *, overwrite: bool = True) -> None: ...
    def rename(self, src: str, dst: str, *, overwrite: bool = True) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> Literal[False]: ...

class BuiltinSerializer:
    @property
    def name(self) -> str: ...
    @property
    def extension(self) -> str: ...
    def serialize(self, obj: Any) -> bytes: ...
    def deserialize(self, data: bytes | bytearray) -> Any: ...

class PickleSerializer(BuiltinSerializer):
    def __init__(self) -> None: ...

class JsonSerializer(BuiltinSerializer):
    def __init__(self) -> None: ...

class ParquetSerializer(BuiltinSerializer):
    """Parquet (``.parquet``), encoded and decoded in Rust.

    Writes polars and pandas DataFrames, pyarrow Tables and RecordBatchReaders, and any
    object with ``__arrow_c_stream__`` (a polars LazyFrame is collected first). pandas needs
    pyarrow; polars does not. The writing library is recorded in the file's key-value
    metadata (``dagster_remote_store.library``) and ``deserialize`` returns that library's
    table (a pyarrow Table for other writers) unless ``into`` asks for another. A missing
    library raises ImportError naming what to ``pip install``; a non-table, TypeError.
    """

    def __init__(self, compression: Literal["zstd", "snappy", "none"] = "zstd") -> None: ...
    @property
    def compression(self) -> Literal["zstd", "snappy", "none"]: ...
    def deserialize(
        self,
        data: bytes | bytearray,
        into: Literal["polars", "polars_lazy", "pandas", "pyarrow"] | None = None,
    ) -> Any: ...
    @staticmethod
    def describe(data: bytes | bytearray) -> ParquetDescription: ...

class ParquetDescription(TypedDict):
    """What ``ParquetSerializer.describe`` reads from a Parquet footer."""

    row_count: int
    columns: list[tuple[str, str]]
    compression: str | None
    library: str | None

def serializer_names() -> list[str]: ...

class IoManagerCore:
    def __init__(self, store: Store, serializer: str | Serializer, *, max_concurrency: int = 16) -> None: ...
    @property
    def extension(self) -> str: ...
    @property
    def serializer_name(self) -> str: ...
    def path(self, asset_key: list[str], partition: list[str]) -> str: ...
    def handle_output(self, path: str, obj: Any) -> dict[str, Any]: ...
    def load_input(self, path: str) -> Any: ...
    def load_many(self, paths: list[str], *, missing: Any = None) -> list[Any]: ...
    def exists(self, path: str) -> bool: ...
    def uri(self, path: str) -> str: ...
