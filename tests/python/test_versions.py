"""Versioned outputs: every materialization kept under a version of its own, a pointer moved by
compare-and-swap, pinned loads, and the cleanup that follows Dagster (wipes, retention, runs in
progress). On every backend, against its real server."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from dagster import (
    AssetIn,
    AssetKey,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    StaticPartitionsDefinition,
    asset,
    build_sensor_context,
    materialize,
)

from dagster_remote_store import (
    InvalidConfig,
    NotFound,
    RemoteStoreIOManager,
    Retention,
    Store,
    cleanup_sensor,
    plan_cleanup,
    remote_store_io_manager,
)

from conftest import make_store

HAS_WIPE_EVENTS = hasattr(DagsterEventType, "ASSET_WIPED")


def up_and_down(holder: dict):
    @asset
    def up() -> int:
        return holder["value"]

    @asset
    def down(up: int) -> int:
        return up * 10

    return up, down


def metadata_of(instance, key: str, partition: str | None = None) -> list[dict]:
    """Each materialization's metadata, oldest first."""
    records = instance.fetch_materializations(AssetKey(key), limit=100).records
    found = [r.asset_materialization.metadata for r in records if r.partition_key == partition]
    return list(reversed(found))


def pointer(store: Store, path: str) -> dict:
    return json.loads(store.read_bytes(f"{path}.versions/current.json"))


def test_each_materialization_is_a_version_and_loads_follow_the_pointer(store: Store, instance) -> None:
    holder = {"value": 1}
    up, down = up_and_down(holder)
    io_manager = remote_store_io_manager(store, versioned=True)
    for value in (1, 2, 3):
        holder["value"] = value
        result = materialize([up, down], resources={"io_manager": io_manager}, instance=instance)
        assert result.success and result.output_for_node("down") == value * 10

    versions = [m["version"].value for m in metadata_of(instance, "up")]
    assert len(set(versions)) == 3 and versions == sorted(versions)
    latest = metadata_of(instance, "up")[-1]
    assert latest["path"].value == f"up.pkl.versions/{versions[-1]}.pkl"
    assert latest["dagster/uri"].value.endswith(f"up.pkl.versions/{versions[-1]}.pkl")
    assert io_manager.core.load_input(latest["path"].value) == 3
    current = pointer(store, "up.pkl")
    assert (current["version"], current["seq"]) == (versions[-1], 3)
    assert [h["version"] for h in current["history"]] == versions[1::-1]
    assert not store.exists("up.pkl"), "a versioned output leaves the unversioned path alone"

    # A past version, as the UI shows it on its materialization, loads when pinned.
    @asset(ins={"up": AssetIn(metadata={"version": versions[0]})})
    def pinned(up: int) -> int:
        return up

    result = materialize([up, pinned], selection=[pinned], resources={"io_manager": io_manager}, instance=instance)
    assert result.output_for_node("pinned") == 1


def test_partitions_have_versions_of_their_own(store: Store, instance) -> None:
    parts = StaticPartitionsDefinition(["a", "b"])
    holder = {"value": 0}

    @asset(partitions_def=parts)
    def daily(context) -> str:
        return f"{context.partition_key}{holder['value']}"

    io_manager = remote_store_io_manager(store, versioned=True)
    resources = {"io_manager": io_manager}
    for value, key in ((1, "a"), (1, "b"), (2, "a")):
        holder["value"] = value
        assert materialize([daily], partition_key=key, resources=resources, instance=instance).success
    first_a = metadata_of(instance, "daily", "a")[0]["version"].value

    @asset(ins={"daily": AssetIn(metadata={"version": {"a": first_a}})})
    def both(daily: dict) -> dict:
        return daily

    @asset
    def current(daily: dict) -> dict:
        return daily

    result = materialize([daily, both, current], selection=[both, current], resources=resources, instance=instance)
    assert result.output_for_node("both") == {"a": "a1", "b": "b1"}
    assert result.output_for_node("current") == {"a": "a2", "b": "b1"}


def test_pins_that_cannot_apply_are_refused(tmp_path, instance) -> None:
    store = make_store("local", tmp_path)
    up, _ = up_and_down({"value": 1})
    assert materialize([up], resources={"io_manager": remote_store_io_manager(store)}, instance=instance).success

    @asset(ins={"up": AssetIn(metadata={"version": "20261207T023512345Z-3f2a9c1e-0b7d"})})
    def pinned(up: int) -> int:
        return up

    with pytest.raises(InvalidConfig, match="does not keep versions"):
        materialize([up, pinned], selection=[pinned], resources={"io_manager": remote_store_io_manager(store)})

    @asset(ins={"up": AssetIn(metadata={"version": "latest"})})
    def misnamed(up: int) -> int:
        return up

    io_manager = remote_store_io_manager(store, versioned=True)
    with pytest.raises(InvalidConfig, match=r'"latest" is not a version of "up\.pkl"'):
        materialize([up, misnamed], selection=[misnamed], resources={"io_manager": io_manager})
    with pytest.raises(InvalidConfig, match="versioned=True"):
        remote_store_io_manager(store, retention=Retention(keep_last=1))
    with pytest.raises(InvalidConfig, match="keep_last"):
        Retention(keep_last=0)


def test_an_output_stored_before_versions_loads_until_the_first_version(store: Store, instance) -> None:
    holder = {"value": 1}
    up, down = up_and_down(holder)
    assert materialize([up], resources={"io_manager": remote_store_io_manager(store)}, instance=instance).success
    versioned = {"io_manager": remote_store_io_manager(store, versioned=True)}
    result = materialize([up, down], selection=[down], resources=versioned, instance=instance)
    assert result.output_for_node("down") == 10
    holder["value"] = 2
    result = materialize([up, down], resources=versioned, instance=instance)
    assert result.output_for_node("down") == 20


def test_concurrent_runs_each_publish_a_version(store: Store) -> None:
    """Eight runs materialize one asset at once: every version is stored whole, the pointer
    moved once per run (none lost to a race), and it names one of them."""
    runs = 8
    barrier = threading.Barrier(runs)
    io_manager = remote_store_io_manager(store, versioned=True)

    def run(value: int) -> str:
        @asset(name="shared")
        def shared() -> bytes:
            barrier.wait()
            return bytes([value]) * 200_000

        with DagsterInstance.ephemeral() as instance:
            result = materialize([shared], resources={"io_manager": io_manager}, instance=instance)
            assert result.success
            return metadata_of(instance, "shared")[-1]["version"].value

    with ThreadPoolExecutor(runs) as pool:
        versions = list(pool.map(run, range(runs)))
    current = pointer(store, "shared.pkl")
    assert current["seq"] == runs
    assert sorted([current["version"], *(h["version"] for h in current["history"])]) == sorted(versions)
    for value, version in enumerate(versions):
        [path] = io_manager.core.resolve(["shared.pkl"], pins=[version])
        assert io_manager.core.load_input(path) == bytes([value]) * 200_000
    [path] = io_manager.core.resolve(["shared.pkl"])
    assert path == f"shared.pkl.versions/{current['version']}.pkl"


def stored_under(store: Store, prefix: str) -> list[str]:
    """What is stored at paths starting with `prefix` (`up.pkl` covers `up.pkl.versions/`)."""
    return sorted(p for p in store.list("") if p.startswith(prefix) and ".checksums/" not in p)


def test_retention_keeps_the_last_versions_and_what_runs_in_progress_may_read(tmp_path, instance) -> None:
    store = make_store("local", tmp_path)
    holder = {"value": 0}
    up, down = up_and_down(holder)
    io_manager = remote_store_io_manager(store, versioned=True, retention=Retention(keep_last=1))
    defs = Definitions(assets=[up, down], resources={"io_manager": io_manager})

    def materialize_up(value: int) -> None:
        holder["value"] = value
        assert materialize([up], resources={"io_manager": io_manager}, instance=instance).success

    materialize_up(1)
    # A run that reads `up` (it materializes `down`) starts, and has not finished.
    reader = DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        status=DagsterRunStatus.STARTED,
        asset_selection=frozenset({AssetKey("down")}),
    )
    instance.add_run(reader)
    for value in (2, 3, 4):
        materialize_up(value)
    versions = [m["version"].value for m in metadata_of(instance, "up")]

    plan = plan_cleanup(instance, defs, io_manager, grace=timedelta(0))
    assert plan.deletions == []
    assert {k.version: k.reason for k in plan.kept} == {
        v: "current while a run in progress may have read it" for v in versions[:3]
    }

    instance.report_run_failed(reader)
    plan = plan_cleanup(instance, defs, io_manager, grace=timedelta(0))
    assert sorted(d.version for d in plan.deletions) == versions[:3]
    assert all(d.reason == "older than the last 1 versions" for d in plan.deletions)
    assert len(stored_under(store, "up.pkl.versions")) == 5, "a plan deletes nothing"
    assert plan.apply() >= 3
    assert stored_under(store, "up.pkl.versions") == [
        f"up.pkl.versions/{versions[-1]}.pkl",
        "up.pkl.versions/current.json",
    ]
    result = materialize([up, down], selection=[down], resources={"io_manager": io_manager}, instance=instance)
    assert result.output_for_node("down") == 40

    # Within the grace period nothing goes; an input's pin keeps its version.
    materialize_up(5)
    assert plan_cleanup(instance, defs, io_manager).deletions == []
    newest = metadata_of(instance, "up")[-1]["version"].value

    @asset(ins={"up": AssetIn(metadata={"version": versions[-1]})})
    def pinned(up: int) -> int:
        return up

    materialize_up(6)
    # An asset defined elsewhere has no inputs to pin anything.
    pinned_defs = Definitions(assets=[up, pinned, AssetSpec("outside")], resources={"io_manager": io_manager})
    plan = plan_cleanup(instance, pinned_defs, io_manager, grace=timedelta(0))
    assert [d.version for d in plan.deletions] == [newest]
    assert [(k.version, k.reason) for k in plan.kept] == [(versions[-1], "pinned by an input")]


def wipe(instance, key: str) -> list[AssetKey]:
    """Wipes `key`; returns what plan_cleanup must be told of on dagster without wipe events."""
    instance.wipe_assets([AssetKey(key)])
    return [] if HAS_WIPE_EVENTS else [AssetKey(key)]


def test_a_wipe_deletes_what_was_stored_before_it(store: Store, instance) -> None:
    parts = StaticPartitionsDefinition(["a", "b"])

    @asset
    def up() -> int:
        return 1

    @asset(partitions_def=parts)
    def daily(context) -> str:
        return context.partition_key

    @asset
    def kept() -> int:
        return 2

    for versioned in (True, False):
        io_manager = remote_store_io_manager(store, versioned=versioned)
        resources = {"io_manager": io_manager}
        defs = Definitions(assets=[up, daily, kept], resources=resources)
        assert materialize([up, kept], resources=resources, instance=instance).success
        assert materialize([up], resources=resources, instance=instance).success
        for key in ("a", "b"):
            assert materialize([daily], partition_key=key, resources=resources, instance=instance).success
        before = stored_under(store, "")
        # Stores that give modification times in whole seconds cannot order a write and a wipe
        # within one second: such an object stays, so the wipe here comes a second later.
        time.sleep(0 if versioned else 1.1)
        wiped = wipe(instance, "up") + wipe(instance, "daily")
        plan = plan_cleanup(instance, defs, io_manager, wiped=wiped)
        assert plan.deletions == [], "within the grace period nothing goes"
        assert any(k.deferred and "grace" in k.reason for k in plan.kept)
        plan = plan_cleanup(instance, defs, io_manager, wiped=wiped, grace=timedelta(0))
        assert stored_under(store, "") == before, "planning deletes nothing"
        assert {d.asset_key for d in plan.deletions} == {AssetKey("up"), AssetKey("daily")}
        plan.apply()
        assert stored_under(store, "up.pkl") == [] and stored_under(store, "daily") == [], versioned
        assert store.list("up.pkl.checksums") == []
        assert stored_under(store, "kept.pkl") != []
        with pytest.raises(NotFound):
            io_manager.core.load_input(io_manager.core.resolve(["up.pkl"])[0])

        # What is stored after a wipe stays, when the wipe events are read again (older dagster has none).
        time.sleep(0 if versioned else 1.1)
        assert materialize([up], resources=resources, instance=instance).success
        plan = plan_cleanup(instance, defs, io_manager, wiped=(), grace=timedelta(0))
        assert plan.deletions == []
        assert io_manager.core.load_input(io_manager.core.resolve(["up.pkl"])[0]) == 1
        instance.wipe_assets([AssetKey("up"), AssetKey("kept")])
        time.sleep(0 if versioned else 1.1)
        everything = [AssetKey("up"), AssetKey("kept")]
        plan_cleanup(instance, defs, io_manager, wiped=everything, grace=timedelta(0)).apply()
        assert stored_under(store, "") == []


@pytest.mark.skipif(not HAS_WIPE_EVENTS, reason="dagster before 1.11 logs no wipe events")
def test_the_sensor_dry_runs_then_deletes_and_keeps_its_cursor(tmp_path, instance) -> None:
    store = make_store("local", tmp_path)

    @asset
    def up() -> int:
        return 1

    io_manager = remote_store_io_manager(store, versioned=True)
    assert materialize([up], resources={"io_manager": io_manager}, instance=instance).success
    instance.wipe_assets([AssetKey("up")])

    for apply in (False, True):
        sensor = cleanup_sensor(apply=apply, grace=timedelta(0))
        defs = Definitions(assets=[up], sensors=[sensor], resources={"io_manager": io_manager})
        context = build_sensor_context(instance=instance, definitions=defs, resources={"io_manager": io_manager})
        result = sensor.evaluate_tick(context)
        if not apply:
            assert "dry run: 2 deletions" in result.skip_message
            assert stored_under(store, "up.pkl.versions") != []
            assert result.cursor is None
        else:
            assert result.skip_message.startswith("deleted ")
            assert stored_under(store, "up.pkl") == []
            assert float(result.cursor) > 0


def test_retention_from_config_through_the_sensor(tmp_path, instance) -> None:
    holder = {"value": 0}
    up, _ = up_and_down(holder)
    config = RemoteStoreIOManager(
        backend_type="local", backend_options={"root": str(tmp_path)}, versioned=True, keep_last=2
    )
    for value in range(4):
        holder["value"] = value
        assert materialize([up], resources={"io_manager": config}, instance=instance).success
    sensor = cleanup_sensor(apply=True, grace=timedelta(0))
    defs = Definitions(assets=[up], sensors=[sensor], resources={"io_manager": config})
    with build_sensor_context(instance=instance, definitions=defs, resources={"io_manager": config}) as context:
        result = sensor.evaluate_tick(context)
    assert result.skip_message.startswith("deleted 2 objects"), result.skip_message
    versions = sorted(p.name for p in (tmp_path / "up.pkl.versions").iterdir() if p.suffix == ".pkl")
    assert versions == sorted(m["version"].value + ".pkl" for m in metadata_of(instance, "up")[2:])
    with pytest.raises(InvalidConfig, match="build_resources"):
        plan_cleanup(instance, defs, config)


CLI_PROJECT = """
from datetime import timedelta
import os
from dagster import Definitions, asset
from dagster_remote_store import RemoteStoreIOManager, cleanup_sensor

@asset
def up() -> str:
    return os.environ["VALUE"]

defs = Definitions(
    assets=[up],
    resources={"io_manager": RemoteStoreIOManager(
        backend_type="local", backend_options={"root": os.environ["ROOT"]}, versioned=True, keep_last=1
    )},
    sensors=[cleanup_sensor(apply=True, grace=timedelta(0))],
)
"""


def test_the_dagster_cli_wipes_and_the_sensor_deletes(tmp_path) -> None:
    """Real processes and a real DAGSTER_HOME: `dagster asset materialize`, `dagster asset wipe`,
    then the sensor evaluated by `dagster sensor preview` in the code location."""
    (tmp_path / "defs.py").write_text(CLI_PROJECT)
    root, home = tmp_path / "store", tmp_path / "home"
    home.mkdir()

    def dagster(*args: str, value: str = "") -> str:
        env = {**os.environ, "DAGSTER_HOME": str(home), "ROOT": str(root), "VALUE": value}
        command = [sys.executable, "-m", "dagster", *args, "-f", str(tmp_path / "defs.py")]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    def versions() -> list[str]:
        return sorted(p.name for p in (root / "up.pkl.versions").iterdir() if p.suffix == ".pkl")

    for value in ("a", "b", "c"):
        dagster("asset", "materialize", "--select", "up", value=value)
    assert len(versions()) == 3
    out = dagster("sensor", "preview", "io_manager_cleanup")
    assert "deleted " in out and "2 deletions" in out, out
    [current] = versions()
    assert pickle.loads((root / "up.pkl.versions" / current).read_bytes()) == "c"
    if not HAS_WIPE_EVENTS:
        return
    subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "wipe", "up", "--noprompt"],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = dagster("sensor", "preview", "io_manager_cleanup")
    assert "deleted " in out and "2 deletions" in out, out
    assert [p.name for p in root.rglob("*") if p.is_file()] == []
