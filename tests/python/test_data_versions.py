"""Data versions from the stored content: an asset materialized again to the same bytes keeps
its data version, so Dagster's staleness view leaves the assets downstream of it fresh; other
bytes make them stale. Checked with the resolver behind the UI's stale status. The assets have
no code versions, so without content versions every run would give new data versions and make
everything downstream stale."""

from __future__ import annotations

import pickle

import polars as pl
from dagster import (
    AssetKey,
    DataVersion,
    Output,
    StaticPartitionsDefinition,
    asset,
    build_output_context,
    materialize,
)
from dagster._core.definitions.data_version import DATA_VERSION_IS_USER_PROVIDED_TAG, DATA_VERSION_TAG
from dagster._utils.test.data_versions import get_stale_status_resolver

from dagster_remote_store import Store, dagster_dataset_io_manager, remote_store_io_manager


def latest(instance, key: str, partition: str | None = None):
    records = instance.fetch_materializations(AssetKey(key), limit=10).records
    [record] = [r for r in records if r.partition_key == partition][:1]
    return record.asset_materialization


def status(instance, assets, key: str, partition: str | None = None) -> str:
    resolver = get_stale_status_resolver(instance, assets)
    return resolver.get_status(AssetKey(key), partition).value


def chain(value: dict):
    @asset
    def up() -> dict:
        return dict(value)

    @asset
    def down(up: dict) -> int:
        return len(up)

    return [up, down]


def test_the_same_bytes_keep_downstream_fresh_and_other_bytes_make_it_stale(store: Store, instance) -> None:
    value = {"n": 1}
    assets = chain(value)
    resources = {"io_manager": remote_store_io_manager(store)}
    assert materialize(assets, resources=resources, instance=instance).success
    first = latest(instance, "up")
    checksum, size = first.metadata["checksum"].value, first.metadata["size_bytes"].value
    assert first.tags[DATA_VERSION_TAG] == f"{checksum}-{size:016x}"
    assert size == len(store.read_bytes(first.metadata["path"].value))
    assert status(instance, assets, "down") == "FRESH"

    assert materialize(assets[:1], resources=resources, instance=instance).success
    assert latest(instance, "up").tags[DATA_VERSION_TAG] == first.tags[DATA_VERSION_TAG]
    assert status(instance, assets, "down") == "FRESH"

    value["n"] = 2
    assert materialize(assets[:1], resources=resources, instance=instance).success
    assert latest(instance, "up").tags[DATA_VERSION_TAG] != first.tags[DATA_VERSION_TAG]
    assert status(instance, assets, "down") == "STALE"


def test_a_data_version_the_asset_gives_is_kept(store: Store, instance) -> None:
    @asset
    def up() -> Output[int]:
        return Output(1, data_version=DataVersion("v7"))

    assert materialize([up], resources={"io_manager": remote_store_io_manager(store)}, instance=instance).success
    materialization = latest(instance, "up")
    assert materialization.tags[DATA_VERSION_TAG] == "v7"
    assert materialization.tags[DATA_VERSION_IS_USER_PROVIDED_TAG] == "true"


def test_a_dataset_written_again_keeps_its_version_though_its_manifest_changes(store: Store, instance) -> None:
    frame = pl.DataFrame({"id": range(10)})

    @asset
    def table() -> pl.DataFrame:
        return frame

    @asset(io_manager_key="values")
    def rows(table: pl.DataFrame) -> int:
        return table.height

    assets = [table, rows]
    resources = {
        "io_manager": dagster_dataset_io_manager(store, max_rows_per_part=4),
        "values": remote_store_io_manager(store),
    }
    assert materialize(assets, resources=resources, instance=instance).success
    first = latest(instance, "table")
    assert materialize(assets[:1], resources=resources, instance=instance).success
    second = latest(instance, "table")
    # A manifest names its run, so its checksum differs; the data version does not.
    assert second.metadata["checksum"].value != first.metadata["checksum"].value
    assert second.tags[DATA_VERSION_TAG] == first.tags[DATA_VERSION_TAG]
    assert status(instance, assets, "rows") == "FRESH"

    frame = pl.DataFrame({"id": range(11)})
    assert materialize(assets[:1], resources=resources, instance=instance).success
    assert status(instance, assets, "rows") == "STALE"


def test_each_partition_has_the_version_of_its_own_bytes(store: Store, instance) -> None:
    values = {"a": 1, "b": 2}
    parts = StaticPartitionsDefinition(["a", "b"])

    @asset(partitions_def=parts)
    def up(context) -> int:
        return values[context.partition_key]

    @asset(partitions_def=parts)
    def down(up: int) -> int:
        return up

    assets = [up, down]
    resources = {"io_manager": remote_store_io_manager(store)}
    for key in ["a", "b"]:
        assert materialize(assets, partition_key=key, resources=resources, instance=instance).success
    assert latest(instance, "up", "a").tags[DATA_VERSION_TAG] != latest(instance, "up", "b").tags[DATA_VERSION_TAG]

    values["b"] = 3
    for key in ["a", "b"]:
        assert materialize(assets[:1], partition_key=key, resources=resources, instance=instance).success
    assert status(instance, assets, "down", "a") == "FRESH"
    assert status(instance, assets, "down", "b") == "STALE"


def test_a_context_built_by_hand_stores_without_a_data_version(store: Store) -> None:
    manager = remote_store_io_manager(store)
    manager.handle_output(build_output_context(asset_key=AssetKey("solo")), {"x": 1})
    assert pickle.loads(store.read_bytes("solo.pkl")) == {"x": 1}
