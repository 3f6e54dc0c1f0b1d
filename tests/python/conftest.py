"""Shared fixtures: every store-level test runs on each backend.

Local and memory always run. S3, Azure, GCS and SFTP run against the servers that
`cargo xtask test` starts and lists in DRS_TEST_SERVERS; a server that is not
running makes its tests skip with the reason, or fail under CI=true.
"""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance

from dagster_remote_store import CHECKSUM_RECORDS_SUFFIX, Store
from dagster_remote_store.backends import (
    AzureBackend,
    GCSBackend,
    LocalBackend,
    MemoryBackend,
    S3Backend,
    SFTPBackend,
)

REMOTE = ["s3", "azure", "gcs", "sftp"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    # A Dagster context left to the collector closes its ephemeral instance, which logs;
    # collected inside pytest's own ast.parse of a failure, that trips CPython 3.11's
    # "AST constructor recursion depth mismatch". Collect while the test still owns it.
    try:
        return (yield)
    finally:
        gc.collect()
BACKENDS = ["local", "memory", *REMOTE]


def running_servers() -> set[str]:
    return {name for name in os.environ.get("DRS_TEST_SERVERS", "").split(",") if name}


def require_server(kind: str) -> None:
    if kind in running_servers():
        return
    reason = f"no {kind} test server (DRS_TEST_SERVERS does not list it): run `cargo xtask test`"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def make_backend(kind: str, tmp_path, bucket: str | None = None):
    """A backend of `kind` on its test server; `bucket` (or container) replaces the server's own."""
    env = os.environ.get
    if kind == "local":
        return LocalBackend(root=str(tmp_path / "store"))
    if kind == "memory":
        return MemoryBackend()
    require_server(kind)
    if kind == "s3":
        return S3Backend(
            bucket or env("DRS_TEST_S3_BUCKET"),
            endpoint_url=env("DRS_TEST_S3_ENDPOINT"),
            key=env("DRS_TEST_S3_KEY"),
            secret=env("DRS_TEST_S3_SECRET"),
            region_name=env("DRS_TEST_S3_REGION"),
            allow_http=True,
        )
    if kind == "azure":
        return AzureBackend(
            bucket or env("DRS_TEST_AZURE_CONTAINER"),
            account_name=env("DRS_TEST_AZURE_ACCOUNT"),
            account_key=env("DRS_TEST_AZURE_KEY"),
            account_url=env("DRS_TEST_AZURE_ENDPOINT"),
            allow_http=True,
        )
    if kind == "gcs":
        return GCSBackend(
            bucket or env("DRS_TEST_GCS_BUCKET"), base_url=env("DRS_TEST_GCS_URL"), anonymous=True, allow_http=True
        )
    if kind == "sftp":
        return SFTPBackend(
            env("DRS_TEST_SFTP_HOST"),
            port=int(env("DRS_TEST_SFTP_PORT")),
            username=env("DRS_TEST_SFTP_USER"),
            private_key=env("DRS_TEST_SFTP_KEY"),
            known_hosts=env("DRS_TEST_SFTP_KNOWN_HOSTS"),
            base_path=env("DRS_TEST_SFTP_ROOT"),
        )
    raise ValueError(kind)


def make_store(kind: str, tmp_path) -> Store:
    """A Store of `kind` under a folder of its own: remote buckets are shared by every test."""
    return Store(make_backend(kind, tmp_path), root_path=f"tests/{uuid.uuid4().hex}")


def has_user_xattrs(folder) -> bool:
    """Whether files under `folder` take user extended attributes, where local
    stores keep checksums (without them, a sidecar is written instead)."""
    probe = Path(folder) / f".xattr-probe-{uuid.uuid4().hex}"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def stored(store: Store, prefix: str = "") -> list[str]:
    """What the IO manager stored under `prefix`: the objects, without the
    checksum records it keeps beside them where object metadata cannot hold them."""
    return [path for path in store.list(prefix) if f"{CHECKSUM_RECORDS_SUFFIX}/" not in path]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Store:
    with make_store(request.param, tmp_path) as store:
        yield store


@pytest.fixture
def instance():
    """An ephemeral Dagster instance, closed after the test."""
    with DagsterInstance.ephemeral() as instance:
        yield instance
