"""Exceptions raised by stores and the IO manager.

Every one is a :class:`RemoteStoreError`, and also the builtin exception a
Python user would catch for the same failure: ``NotFound`` is a
``FileNotFoundError``, ``InvalidPath`` a ``ValueError``, and so on.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "AssetMismatch",
    "ChecksumMismatch",
    "DeserializationError",
    "InternalError",
    "InvalidConfig",
    "InvalidPath",
    "NotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "RemoteStoreError",
    "SerializationError",
    "Unavailable",
]


class RemoteStoreError(Exception):
    """Base of every error raised by dagster-remote-store.

    ``path`` is the store-relative path involved, ``operation`` what was being
    done (``"read"``, ``"write"``, ...) and ``backend`` the backend kind, where known.
    """

    path: str | None
    operation: str | None
    backend: str | None

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        operation: str | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.operation = operation
        self.backend = backend


class NotFound(RemoteStoreError, FileNotFoundError):
    """The object does not exist."""


class AlreadyExists(RemoteStoreError, FileExistsError):
    """A create-only write, copy or rename found its target already there."""


class PermissionDenied(RemoteStoreError, PermissionError):
    """The backend refused the credentials or the operation."""


class InvalidPath(RemoteStoreError, ValueError):
    """A path, asset key or extension that cannot name an object in a store."""


class InvalidConfig(RemoteStoreError, ValueError):
    """A backend or store option that is missing, unknown or has a bad value."""


class Unavailable(RemoteStoreError, ConnectionError):
    """A transient failure (timeout, throttling, server error): retrying may succeed."""


class PreconditionFailed(RemoteStoreError):
    """A condition of the request did not hold."""


class SerializationError(RemoteStoreError, TypeError):
    """A value the serializer cannot encode."""


class DeserializationError(RemoteStoreError, ValueError):
    """Stored bytes the serializer cannot decode."""


class InternalError(RemoteStoreError, RuntimeError):
    """A bug inside dagster-remote-store (a Rust panic), caught before it reached
    Python; a write that fails this way stores nothing."""


class AssetMismatch(RemoteStoreError):
    """An object stored for another asset or partition, at a path two assets share
    (asset ``["foo"]`` partition ``"bar"`` and asset ``["foo", "bar"]`` both map to
    ``foo/bar``): it is neither loaded nor replaced as the other asset's.

    ``stored`` names the asset (and partition) the object was stored for,
    ``expected`` the one asked for; ``uri`` is the object's URI.
    """

    uri: str | None = None
    stored: str | None = None
    expected: str | None = None


class ChecksumMismatch(RemoteStoreError):
    """Stored bytes that do not match the checksum recorded when they were written:
    the object was corrupted or replaced behind the IO manager's back, and is not loaded.

    ``stored`` is the recorded checksum and ``actual`` the checksum of the bytes
    read (``"crc32c:<8 hex digits>"``); ``uri`` is the object's URI.
    """

    uri: str | None = None
    stored: str | None = None
    actual: str | None = None
