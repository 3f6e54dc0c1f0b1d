"""A Dagster IO manager on a Rust storage core.

>>> from dagster_remote_store import Store, remote_store_io_manager
>>> from dagster_remote_store.backends import LocalBackend
>>> io_manager = remote_store_io_manager(Store(LocalBackend(root="/data/dagster")))  # doctest: +SKIP
"""

from ._core import CHECKSUM_RECORDS_SUFFIX, CHECKSUM_SIDECAR_SUFFIX, FileInfo, Registry, Secret, Store, __version__
from .compute_logs import RemoteStoreComputeLogManager
from .datasets import DatasetIncomplete, ManifestCorrupted, dagster_dataset_io_manager
from .errors import (
    AlreadyExists,
    AssetMismatch,
    ChecksumMismatch,
    DeserializationError,
    InternalError,
    InvalidConfig,
    InvalidPath,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RemoteStoreError,
    SerializationError,
    Unavailable,
)
from .files import ObjectFile
from .io_manager import dagster_io_manager, remote_store_io_manager
from .kinds import with_storage_kinds
from .resources import DagsterStoreResource, RemoteStoreIOManager
from .serializers import JsonSerializer, ParquetSerializer, PickleSerializer, Serializer
from .versions import CleanupPlan, Retention, cleanup_sensor, plan_cleanup

__all__ = [
    "CHECKSUM_RECORDS_SUFFIX",
    "CHECKSUM_SIDECAR_SUFFIX",
    "AlreadyExists",
    "AssetMismatch",
    "ChecksumMismatch",
    "CleanupPlan",
    "DagsterStoreResource",
    "DatasetIncomplete",
    "DeserializationError",
    "FileInfo",
    "InternalError",
    "InvalidConfig",
    "InvalidPath",
    "JsonSerializer",
    "ManifestCorrupted",
    "NotFound",
    "ObjectFile",
    "ParquetSerializer",
    "PermissionDenied",
    "PickleSerializer",
    "PreconditionFailed",
    "Registry",
    "RemoteStoreComputeLogManager",
    "RemoteStoreError",
    "RemoteStoreIOManager",
    "Retention",
    "Secret",
    "SerializationError",
    "Serializer",
    "Store",
    "Unavailable",
    "__version__",
    "cleanup_sensor",
    "dagster_dataset_io_manager",
    "dagster_io_manager",
    "plan_cleanup",
    "remote_store_io_manager",
    "with_storage_kinds",
]
