"""Step logs in the team's Store: :class:`RemoteStoreComputeLogManager`, configured in
``dagster.yaml`` as remote-store's is, so the Dagster UI shows every step's stdout and stderr
from any machine.

.. code-block:: yaml

    compute_logs:
      module: dagster_remote_store
      class: RemoteStoreComputeLogManager
      config:
        backend_type: s3
        backend_options:
          bucket: pipeline-logs
          secret: {env: S3_SECRET}
        prefix: dagster
        upload_interval: 30
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import IO, Any, Optional

from dagster import Field, Noneable, Permissive, StringSource, _check as check
from dagster._core.storage.cloud_storage_compute_log_manager import PollingComputeLogSubscriptionManager
from dagster._core.storage.compute_log_manager import CapturedLogContext, CapturedLogSubscription, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._utils import ensure_dir, ensure_file

from ._core import Store
from .errors import NotFound, RemoteStoreError
from .resources import build_store, warn_of_shown_credentials

__all__ = ["RemoteStoreComputeLogManager"]

try:
    from dagster._core.storage.cloud_storage_compute_log_manager import (
        TruncatingCloudStorageComputeLogManager as _UploadingBase,
    )
except ImportError:  # Dagster 1.9 has no upload limit: logs go up whole
    from dagster._core.storage.cloud_storage_compute_log_manager import CloudStorageComputeLogManager

    class _UploadingBase(CloudStorageComputeLogManager):  # type: ignore[no-redef]
        """Dagster's later base class, without its truncation: hands `_upload_file_obj` the captured file."""

        def _upload_file_obj(
            self, data: IO[bytes], log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
        ) -> None:
            raise NotImplementedError

        def upload_to_cloud_storage(
            self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
        ) -> None:
            path = self.local_manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type])
            ensure_file(path)
            with open(path, "rb") as data:
                self._upload_file_obj(data, log_key, io_type, partial)


# Folders under the prefix, as remote-store lays them out, so logs written before a switch still show.
_STORAGE = "storage"
_PARTIAL = "partial"
# Beside `{base}.{ext}.partial` (remote-store's whole partial log, still read): the folder of a
# running step's log segments, `{start}-{end}` each, the bytes of the log from start to end.
_SEGMENTS = "parts"


class RemoteStoreComputeLogManager(_UploadingBase, ConfigurableClass):
    """Captures each step's stdout and stderr to a local folder and uploads them to a Store,
    where the Dagster UI reads them; with ``upload_interval`` (seconds), also while the step runs.

    The Store is ``backend_type`` with ``backend_options`` (as for :class:`DagsterStoreResource`;
    give credentials as ``{env: VAR}``) scoped to ``root_path``, or ``profile`` in the registry
    file at ``registry_path``. Objects are ``{prefix}/storage/{run_id}/compute_logs/{key}.out``
    and ``.err``, and ``.out.partial``/``.err.partial`` while a step runs. ``local_dir`` is where
    logs are captured before upload (the system's temporary folder if not given);
    ``skip_empty_files`` skips uploading empty logs. Uploads are cut at Dagster's limit
    (``DAGSTER_TRUNCATE_COMPUTE_LOGS_UPLOAD_BYTES``, 50 MB by default).

    A log the Store refuses to give (a missing permission, a bad credential, a server gone) shows
    in the log view as that error, not as a missing log.

    On S3, Azure and GCS the UI's download links are URLs signed with the Store's credentials,
    valid for ``url_expiry`` seconds (an hour by default), so downloads do not go through the
    Dagster webserver. With ``show_url_only``, the UI shows only such links, made when the step
    starts, instead of the logs' contents.
    """

    def __init__(
        self,
        backend_type: Optional[str] = None,
        backend_options: Optional[Mapping[str, Any]] = None,
        root_path: str = "",
        local_dir: Optional[str] = None,
        prefix: str = "dagster",
        skip_empty_files: bool = False,
        upload_interval: Optional[int] = None,
        show_url_only: bool = False,
        url_expiry: int = 3600,
        profile: Optional[str] = None,
        registry_path: Optional[str] = None,
        inst_data: Optional[ConfigurableClassData] = None,
    ) -> None:
        if inst_data is not None:
            # dagster.yaml shows whole on the UI's instance configuration page.
            warn_of_shown_credentials(
                type(self).__name__, backend_options or {}, "dagster.yaml", "its instance configuration page"
            )
        self._store, self._registry = build_store(
            type(self).__name__,
            backend_type=backend_type,
            backend_options=dict(backend_options or {}),
            root_path=root_path,
            profile=profile,
            registry_path=registry_path,
        )
        self._prefix = "/".join(part for part in prefix.split("/") if part)
        self._skip_empty_files = skip_empty_files
        self._upload_interval = upload_interval or None
        self._show_url_only = show_url_only
        self._url_expiry = url_expiry
        self._inst_data = inst_data
        # How much of each running log (log key, stdout or stderr) this process has uploaded; a log
        # it has tried to upload segments of is here from the first try.
        self._uploaded: dict[tuple[tuple[str, ...], ComputeIOType], int] = {}
        self._local_manager = LocalComputeLogManager(local_dir or tempfile.gettempdir())
        self._subscription_manager = PollingComputeLogSubscriptionManager(self)  # type: ignore[no-untyped-call]
        super().__init__()  # type: ignore[no-untyped-call]

    # Configured from dagster.yaml

    @property
    def inst_data(self) -> Optional[ConfigurableClassData]:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "backend_type": Field(StringSource, is_required=False),
            "backend_options": Field(Permissive(), is_required=False),  # type: ignore[no-untyped-call]
            "root_path": Field(StringSource, is_required=False, default_value=""),
            "local_dir": Field(StringSource, is_required=False),
            "prefix": Field(StringSource, is_required=False, default_value="dagster"),
            "skip_empty_files": Field(bool, is_required=False, default_value=False),
            "upload_interval": Field(Noneable(int), is_required=False, default_value=None),
            "show_url_only": Field(bool, is_required=False, default_value=False),
            "url_expiry": Field(int, is_required=False, default_value=3600),
            "profile": Field(StringSource, is_required=False),
            "registry_path": Field(StringSource, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: Optional[ConfigurableClassData], config_value: Mapping[str, Any]
    ) -> RemoteStoreComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    @property
    def store(self) -> Store:
        """The Store the logs go to."""
        return self._store

    # What the cloud-storage base class asks for

    @property
    def local_manager(self) -> LocalComputeLogManager:
        return self._local_manager

    @property
    def upload_interval(self) -> Optional[int]:
        return self._upload_interval

    def _store_path(self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False) -> str:
        *namespace, base = log_key
        name = f"{base}.{IO_TYPE_EXTENSION[io_type]}" + (f".{_PARTIAL}" if partial else "")
        return "/".join(part for part in (self._prefix, _STORAGE, *namespace, name) if part)

    def _store_folder(self, log_key_prefix: Sequence[str]) -> str:
        return "/".join(part for part in (self._prefix, _STORAGE, *log_key_prefix) if part)

    def _segments_folder(self, log_key: Sequence[str], io_type: ComputeIOType) -> str:
        return f"{self._store_path(log_key, io_type, partial=True)}.{_SEGMENTS}/"

    def _segments(self, log_key: Sequence[str], io_type: ComputeIOType) -> list[tuple[int, int, str]]:
        """The running step's log as stored so far: segments `(start, end, path)` that follow
        each other from the log's first byte. Where an upload was repeated (its answer lost), the
        longest segment from each start is taken."""
        folder = self._segments_folder(log_key, io_type)
        longest: dict[int, tuple[int, str]] = {}
        for path in self._store.list(folder):
            first, _, last = path[len(folder) :].partition("-")
            if first.isdigit() and last.isdigit() and int(last) > longest.get(int(first), (-1, ""))[0]:
                longest[int(first)] = (int(last), path)
        chain: list[tuple[int, int, str]] = []
        at = 0
        while at in longest:
            end, path = longest[at]
            chain.append((at, end, path))
            at = end
        return chain

    def _upload_file_obj(
        self, data: IO[bytes], log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        local = self._local_manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type])
        if (self._skip_empty_files or partial) and os.stat(local).st_size == 0:
            return
        if partial:
            self._upload_segment(data, log_key, io_type)
            return
        # Streamed: the object is replaced whole and atomically, never seen half-written.
        with self._store.open_writer(self._store_path(log_key, io_type)) as writer:
            shutil.copyfileobj(data, writer, 1 << 20)
        # The complete log replaces the running step's segments, where this process wrote any: a
        # step without partial uploads costs no listing.
        if self._uploaded.pop((tuple(log_key), io_type), None) is None:
            return
        with suppress(RemoteStoreError):
            for path in self._store.list(self._segments_folder(log_key, io_type)):
                self._store.delete(path, missing_ok=True)

    def _upload_segment(self, data: IO[bytes], log_key: Sequence[str], io_type: ComputeIOType) -> None:
        """Uploads what the log gained since the last upload from this process, as a segment of
        its own: an interval costs the new bytes, not the whole log again."""
        key = (tuple(log_key), io_type)
        # Recorded before the write: a segment whose answer is lost may still be stored.
        start = self._uploaded.setdefault(key, 0)
        end = data.seek(0, os.SEEK_END)
        if end <= start:
            return
        data.seek(start)
        with self._store.open_writer(f"{self._segments_folder(log_key, io_type)}{start:020d}-{end:020d}") as writer:
            left = end - start
            while left:
                chunk = data.read(min(left, 1 << 20))
                if not chunk:
                    raise RemoteStoreError(f"the captured log {data.name!r} shrank while it was uploaded")
                writer.write(chunk)
                left -= len(chunk)
        self._uploaded[key] = end

    def download_from_cloud_storage(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        local = self._local_manager.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type], partial=partial)
        ensure_dir(os.path.dirname(local))
        segments = self._segments(log_key, io_type) if partial else []
        if segments:
            # Segments never change: keep the ones fetched before, fetch the new ones.
            have = os.path.getsize(local) if os.path.exists(local) else 0
            if have not in {end for _, end, _ in segments}:
                have = 0
            with open(local, "r+b" if have else "wb") as out:
                out.truncate(have)
                out.seek(have)
                for start, _, path in segments:
                    if start >= have:
                        with self._store.open_reader(path) as reader:
                            shutil.copyfileobj(reader, out, 1 << 20)
            return
        with self._store.open_reader(self._store_path(log_key, io_type, partial)) as reader, open(local, "wb") as out:
            shutil.copyfileobj(reader, out, 1 << 20)

    def cloud_storage_has_logs(self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False) -> bool:
        path = self._store_path(log_key, io_type, partial)
        return (partial and bool(self._segments(log_key, io_type))) or self._store.exists(path)

    def get_log_data_for_type(
        self, log_key: Sequence[str], io_type: ComputeIOType, offset: int, max_bytes: Optional[int]
    ) -> tuple[Optional[bytes], int]:
        return _or_refusal(super().get_log_data_for_type, log_key, io_type, offset, max_bytes)

    if not hasattr(_UploadingBase, "get_log_data_for_type"):  # Dagster 1.9 names it log_data_for_type

        def log_data_for_type(
            self, log_key: Sequence[str], io_type: ComputeIOType, offset: int, max_bytes: Optional[int]
        ) -> tuple[Optional[bytes], int]:
            return _or_refusal(super().log_data_for_type, log_key, io_type, offset, max_bytes)  # type: ignore[misc]

    def display_path_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> Optional[str]:  # type: ignore[override]
        if not self.is_capture_complete(log_key):
            return None
        return self._store.uri(self._store_path(log_key, io_type))

    def download_url_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> Optional[str]:
        if not self.is_capture_complete(log_key):
            return None
        return self._signed_url(log_key, io_type)

    def _signed_url(self, log_key: Sequence[str], io_type: ComputeIOType) -> Optional[str]:
        """A signed URL, or `None` where the Store cannot sign one (no backend support, or
        credentials that cannot sign, such as anonymous access): the webserver serves the log then."""
        try:
            return self._store.signed_url(self._store_path(log_key, io_type), self._url_expiry)
        except RemoteStoreError:
            return None

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        with super().capture_logs(log_key) as context:
            out, err = (
                (self._signed_url(log_key, ComputeIOType.STDOUT), self._signed_url(log_key, ComputeIOType.STDERR))
                if self._show_url_only
                else (None, None)
            )
            if out is None or err is None:
                yield context
            else:
                yield CapturedLogContext(context.log_key, external_stdout_url=out, external_stderr_url=err)

    def delete_logs(self, log_key: Optional[Sequence[str]] = None, prefix: Optional[Sequence[str]] = None) -> None:
        if log_key is None and prefix is None:
            check.failed("Must pass in either `log_key` or `prefix` argument to delete_logs")
        self._local_manager.delete_logs(log_key=log_key, prefix=prefix)
        if log_key:
            paths = [
                path
                for io_type in (ComputeIOType.STDOUT, ComputeIOType.STDERR)
                for path in (
                    self._store_path(log_key, io_type),
                    self._store_path(log_key, io_type, partial=True),
                    *self._store.list(self._segments_folder(log_key, io_type)),
                )
            ]
        else:
            paths = self._store.list(self._store_folder(prefix or []) + "/")
        for path in paths:
            self._store.delete(path, missing_ok=True)

    def get_log_keys_for_log_key_prefix(
        self, log_key_prefix: Sequence[str], io_type: ComputeIOType
    ) -> Sequence[list[str]]:
        folder = self._store_folder(log_key_prefix) + "/"
        suffix = f".{IO_TYPE_EXTENSION[io_type]}"
        names = (path[len(folder) :] for path in self._store.list(folder, recursive=False))
        return [[*log_key_prefix, name[: -len(suffix)]] for name in names if name.endswith(suffix)]

    def on_subscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.add_subscription(subscription)

    def on_unsubscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.remove_subscription(subscription)

    def dispose(self) -> None:
        self._subscription_manager.dispose()
        super().dispose()  # type: ignore[no-untyped-call]
        self._registry.close()


def _or_refusal(
    read: Callable[[Sequence[str], ComputeIOType, int, Optional[int]], tuple[Optional[bytes], int]],
    log_key: Sequence[str],
    io_type: ComputeIOType,
    offset: int,
    max_bytes: Optional[int],
) -> tuple[Optional[bytes], int]:
    """What `read` gives, or, where the store refuses the log (not where it is missing), the
    reason, once, where the log would be."""
    try:
        return read(log_key, io_type, offset, max_bytes)
    except RemoteStoreError as err:
        if isinstance(err, NotFound):
            raise
        if offset:
            return None, offset
        shown = f"[dagster-remote-store] cannot read this log from the store: {err}\n".encode()
        return shown, len(shown)
