"""DagsterStoreResource and RemoteStoreIOManager: stores built from Dagster config."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from pathlib import Path

import pytest
from dagster import AssetIn, DagsterResourceFunctionError, EnvVar, asset, materialize

from dagster_remote_store import (
    DagsterStoreResource,
    InvalidConfig,
    JsonSerializer,
    PickleSerializer,
    RemoteStoreIOManager,
    Store,
)
from dagster_remote_store.backends import LocalBackend

from conftest import require_server, stored


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


def local_options(tmp_path: Path) -> dict:
    return {"root": str(tmp_path / "store")}


def open_local(tmp_path: Path) -> Store:
    return Store(LocalBackend(root=str(tmp_path / "store")))


def run(assets, io_manager, instance, **resources):
    return materialize(assets, resources={"io_manager": io_manager, **resources}, instance=instance)


@contextlib.contextmanager
def setup_fails(match: str):
    """Dagster reports a resource that fails to set up with our InvalidConfig as the cause."""
    with pytest.raises(DagsterResourceFunctionError) as raised:
        yield
    cause = raised.value.__cause__
    assert isinstance(cause, InvalidConfig), repr(cause)
    assert re.search(match, str(cause)), (match, str(cause))


def test_resource_builds_the_store_at_setup_and_assets_use_it(tmp_path, instance) -> None:
    seen = []

    @asset
    def writes_directly(store: DagsterStoreResource) -> None:
        seen.append(repr(store.get_store()))
        store.get_store().write("direct.txt", b"hello")

    resource = DagsterStoreResource(backend_type="local", backend_options=local_options(tmp_path), root_path="team")
    assert materialize([writes_directly], resources={"store": resource}, instance=instance).success
    assert open_local(tmp_path).read_bytes("team/direct.txt") == b"hello"
    assert "team" in seen[0]


def test_get_store_before_setup_is_a_clear_error(tmp_path) -> None:
    resource = DagsterStoreResource(backend_type="local", backend_options=local_options(tmp_path))
    with pytest.raises(RuntimeError, match=r"get_store\(\) was called before the resource was set up"):
        resource.get_store()


CLOSED: list[Store] = []


class RecordedStoreResource(DagsterStoreResource):
    """Records the store its teardown closed."""

    def teardown_after_execution(self, context) -> None:
        store = self.get_store()
        super().teardown_after_execution(context)
        CLOSED.append(store)
        with pytest.raises(RuntimeError):
            self.get_store()


def test_teardown_closes_the_store(tmp_path, instance) -> None:
    @asset
    def uses(store: RecordedStoreResource) -> None:
        store.get_store().write("x", b"1")

    CLOSED.clear()
    resource = RecordedStoreResource(backend_type="local", backend_options=local_options(tmp_path))
    assert materialize([uses], resources={"store": resource}, instance=instance).success
    assert len(CLOSED) == 1


def sftp_connections() -> int:
    """Established TCP connections of this process to the SFTP test server."""
    port = int(os.environ["DRS_TEST_SFTP_PORT"])
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
            count += remote_port == port and state == "01" and inode in inodes
    return count


def sftp_options() -> dict:
    env = os.environ.get
    return {
        "host": env("DRS_TEST_SFTP_HOST"),
        "port": int(env("DRS_TEST_SFTP_PORT")),
        "username": env("DRS_TEST_SFTP_USER"),
        "private_key": env("DRS_TEST_SFTP_KEY"),
        "known_hosts": env("DRS_TEST_SFTP_KNOWN_HOSTS"),
        "base_path": env("DRS_TEST_SFTP_ROOT"),
    }


def test_sftp_connections_are_closed_after_the_run(instance) -> None:
    require_server("sftp")
    before = sftp_connections()
    during = []

    @asset
    def counted(numbers: list[int]) -> int:
        during.append(sftp_connections())
        return len(numbers)

    io = RemoteStoreIOManager(
        backend_type="sftp", backend_options=sftp_options(), root_path=f"tests/{uuid.uuid4().hex}"
    )
    assert run([numbers, counted], io, instance).success
    assert during and during[0] > before, "the store was connected while the run was going on"
    assert sftp_connections() == before, "teardown closed every SFTP session"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend_type": "s4"}, r'unknown type "s4"; accepted: local, memory, s3, azure, gcs, sftp'),
        (
            {"backend_type": "local", "backend_options": {"rot": "/x"}},
            r'unknown option "rot"; accepted for local: fsync, root',
        ),
        (
            {"backend_type": "local", "backend_options": {"root": "/x", "fsync": "maybe"}},
            r"fsync must be true or false",
        ),
        ({"backend_type": "s3", "backend_options": {}}, r'"bucket"'),
        ({}, r"no store: give store_resource="),
    ],
)
def test_bad_config_fails_at_setup_naming_the_option(tmp_path, instance, fields, message) -> None:
    ran = []

    @asset
    def should_not_run() -> int:
        ran.append(True)
        return 1

    io = RemoteStoreIOManager(**fields)
    with setup_fails(message):
        run([should_not_run], io, instance)
    assert ran == [], "the error comes before any asset runs"


def test_io_manager_inline_fields_and_json(tmp_path, instance) -> None:
    io = RemoteStoreIOManager(backend_type="local", backend_options=local_options(tmp_path), serializer="json")
    assert run([numbers, total], io, instance).success
    assert sorted(stored(open_local(tmp_path))) == ["numbers.json", "total.json"]
    assert JsonSerializer().deserialize(open_local(tmp_path).read_bytes("total.json")) == 6


def test_io_manager_on_a_store_resource_as_the_seed_shows(tmp_path, instance) -> None:
    io = RemoteStoreIOManager(
        store_resource=DagsterStoreResource(
            backend_type="local", backend_options=local_options(tmp_path), root_path="dagster"
        ),
        serializer="pickle",
    )
    assert run([numbers, total], io, instance).success
    assert PickleSerializer().deserialize(open_local(tmp_path).read_bytes("dagster/total.pkl")) == 6


def test_io_manager_needs_exactly_one_store_source(tmp_path, instance) -> None:
    both = RemoteStoreIOManager(
        store_resource=DagsterStoreResource(backend_type="memory"),
        backend_type="local",
        backend_options=local_options(tmp_path),
    )
    with setup_fails("either store_resource= or the backend fields"):
        run([numbers], both, instance)
    with setup_fails("no store"):
        run([numbers], RemoteStoreIOManager(), instance)
    with setup_fails(r"unknown serializer 'yaml'; accepted: pickle, json, parquet"):
        run([numbers], RemoteStoreIOManager(backend_type="memory", serializer="yaml"), instance)


def test_custom_serializer_and_extension_override(tmp_path, instance) -> None:
    class Csv:
        extension = ".csv"

        def serialize(self, obj) -> bytes:
            return ",".join(map(str, obj)).encode() if isinstance(obj, list) else str(obj).encode()

        def deserialize(self, data: bytes):
            text = data.decode()
            return [int(x) for x in text.split(",")] if "," in text else int(text)

    options = local_options(tmp_path)
    io = RemoteStoreIOManager(backend_type="local", backend_options=options, custom_serializer=Csv())
    assert run([numbers, total], io, instance).success
    assert open_local(tmp_path).read_bytes("numbers.csv") == b"1,2,3"

    renamed = RemoteStoreIOManager(backend_type="local", backend_options=options, extension=".pickle")
    assert run([numbers, total], renamed, instance).success
    assert "total.pickle" in stored(open_local(tmp_path))


def test_options_from_env_vars(tmp_path, instance, monkeypatch) -> None:
    monkeypatch.setenv("DRS_TEST_ROOT_PATH", "from-env")
    monkeypatch.setenv("DRS_TEST_LOCAL_ROOT", str(tmp_path / "store"))
    io = RemoteStoreIOManager(
        backend_type="local",
        backend_options={"root": EnvVar("DRS_TEST_LOCAL_ROOT")},
        root_path=EnvVar("DRS_TEST_ROOT_PATH"),
    )
    assert run([numbers, total], io, instance).success
    assert "from-env/total.pkl" in stored(open_local(tmp_path))

    unset = RemoteStoreIOManager(backend_type="local", backend_options={"root": EnvVar("DRS_TEST_NEVER_SET")})
    with setup_fails("DRS_TEST_NEVER_SET"):
        run([numbers], unset, instance)


def test_s3_credentials_from_env_vars(instance, monkeypatch) -> None:
    require_server("s3")
    env = os.environ.get
    monkeypatch.setenv("MY_S3_SECRET", env("DRS_TEST_S3_SECRET"))
    io = RemoteStoreIOManager(
        backend_type="s3",
        backend_options={
            "bucket": env("DRS_TEST_S3_BUCKET"),
            "endpoint_url": env("DRS_TEST_S3_ENDPOINT"),
            "key": env("DRS_TEST_S3_KEY"),
            "secret": EnvVar("MY_S3_SECRET"),
            "region_name": env("DRS_TEST_S3_REGION"),
            "allow_http": True,
        },
        root_path=f"tests/{uuid.uuid4().hex}",
    )
    assert run([numbers, total], io, instance).success


def test_profile_from_a_registry_file(tmp_path, instance, monkeypatch) -> None:
    monkeypatch.setenv("DRS_TEST_REGISTRY_ROOT", str(tmp_path / "store"))
    registry = tmp_path / "stores.toml"
    registry.write_text(
        """
[backends.disk]
type = "local"
options = { root = "${DRS_TEST_REGISTRY_ROOT}" }

[stores.warehouse]
backend = "disk"
root_path = "${DRS_TEST_WAREHOUSE:-warehouse}"
"""
    )
    io = RemoteStoreIOManager(profile="warehouse", registry_path=str(registry))
    assert run([numbers, total], io, instance).success
    assert "warehouse/total.pkl" in stored(open_local(tmp_path))

    resource = DagsterStoreResource(profile="warehouse", registry_path=str(registry), root_path="sub")

    @asset
    def through_resource(store: DagsterStoreResource) -> None:
        store.get_store().write("r.txt", b"1")

    assert materialize([through_resource], resources={"store": resource}, instance=instance).success
    assert open_local(tmp_path).read_bytes("warehouse/sub/r.txt") == b"1"

    with setup_fails(r"unknown store \"nope\".*warehouse"):
        run([numbers], RemoteStoreIOManager(profile="nope", registry_path=str(registry)), instance)


def test_json_registry_and_partitioned_assets_through_config(tmp_path, instance) -> None:
    from dagster import DailyPartitionsDefinition

    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")

    @asset(partitions_def=days)
    def daily(context) -> str:
        return context.partition_key

    @asset(ins={"daily": AssetIn()})
    def all_days(daily: dict[str, str]) -> list[str]:
        return sorted(daily)

    registry = tmp_path / "stores.json"
    registry.write_text(
        json.dumps(
            {
                "backends": {"d": {"type": "local", "options": {"root": str(tmp_path / "store")}}},
                "stores": {"s": {"backend": "d"}},
            }
        )
    )
    io = RemoteStoreIOManager(profile="s", registry_path=str(registry))
    for day in days.get_partition_keys():
        assert materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance).success
    assert materialize([daily.to_source_asset(), all_days], resources={"io_manager": io}, instance=instance).success
    assert PickleSerializer().deserialize(open_local(tmp_path).read_bytes("all_days.pkl")) == days.get_partition_keys()
