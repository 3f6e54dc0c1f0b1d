"""End to end: real Dagster runs (`dagster.materialize`, op jobs) through the IO manager."""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetIn,
    AssetKey,
    DailyPartitionsDefinition,
    In,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    Out,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    io_manager,
    job,
    materialize,
    op,
)

from dagster_remote_store import PickleSerializer, Store, remote_store_io_manager

from conftest import stored

DAILY = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-08")
DAYS = [f"2026-01-0{d}" for d in range(1, 8)]


def materialization_metadata(result, asset_key: list[str]) -> list[dict[str, Any]]:
    return [
        {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == AssetKey(asset_key)
    ]


def test_unpartitioned_chain_with_the_seed_io_manager_factory(store: Store, instance) -> None:
    @io_manager
    def my_io_manager():
        return remote_store_io_manager(store, serializer="pickle")

    @asset(key_prefix=["sales"])
    def raw_data() -> dict:
        return {"rows": [1, 2, 3]}

    @asset(ins={"raw": AssetIn(key=["sales", "raw_data"])})
    def total(raw: dict) -> int:
        return sum(raw["rows"])

    result = materialize([raw_data, total], resources={"io_manager": my_io_manager}, instance=instance)
    assert result.success
    assert stored(store) == ["sales/raw_data.pkl", "total.pkl"]
    assert PickleSerializer().deserialize(store.read_bytes("total.pkl")) == 6
    [meta] = materialization_metadata(result, ["sales", "raw_data"])
    assert meta["path"] == "sales/raw_data.pkl"
    assert meta["dagster/uri"] == store.uri("sales/raw_data.pkl")
    assert meta["size_bytes"] == store.head("sales/raw_data.pkl").size


@asset(partitions_def=DAILY)
def daily(context) -> dict:
    return {"day": context.partition_key, "n": int(context.partition_key[-1])}


@asset(
    partitions_def=DAILY,
    ins={"daily": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-2, end_offset=0))},
)
def rolling(context, daily: dict[str, dict]) -> list[str]:
    return list(daily)


@asset(partitions_def=DAILY)
def next_day(daily: dict) -> int:
    return daily["n"] + 1


@asset
def all_days(daily: dict[str, dict]) -> int:
    return sum(v["n"] for v in daily.values())


def materialize_days(store: Store, instance, *assets_, days=DAYS) -> None:
    for day in days:
        resources = {"io_manager": remote_store_io_manager(store)}
        result = materialize(list(assets_), partition_key=day, resources=resources, instance=instance)
        assert result.success


def materialize_rolling(store: Store, instance, day: str) -> None:
    result = materialize(
        [daily.to_source_asset(), rolling],
        partition_key=day,
        resources={"io_manager": remote_store_io_manager(store)},
        instance=instance,
    )
    assert result.success


def test_daily_partitions_are_stored_one_object_each(store: Store, instance) -> None:
    materialize_days(store, instance, daily, next_day)
    assert stored(store, "daily") == [f"daily/{day}.pkl" for day in DAYS]
    assert PickleSerializer().deserialize(store.read_bytes("next_day/2026-01-04.pkl")) == 5


def test_partition_mapping_loads_exactly_the_mapped_upstream_partitions_in_order(store: Store, instance) -> None:
    materialize_days(store, instance, daily)
    # Poison a partition outside the window: loading it would fail the run.
    store.write("daily/2026-01-02.pkl", b"not a pickle")
    materialize_rolling(store, instance, "2026-01-05")
    assert PickleSerializer().deserialize(store.read_bytes("rolling/2026-01-05.pkl")) == [
        "2026-01-03",
        "2026-01-04",
        "2026-01-05",
    ]


def test_a_window_clipped_to_one_partition_still_loads_a_dict(store: Store, instance) -> None:
    materialize_days(store, instance, daily, days=["2026-01-01"])
    materialize_rolling(store, instance, "2026-01-01")
    assert PickleSerializer().deserialize(store.read_bytes("rolling/2026-01-01.pkl")) == ["2026-01-01"]


def test_unpartitioned_reader_of_a_partitioned_asset_gets_every_partition(store: Store, instance) -> None:
    materialize_days(store, instance, daily)
    result = materialize(
        [daily.to_source_asset(), all_days], resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.success
    assert PickleSerializer().deserialize(store.read_bytes("all_days.pkl")) == sum(range(1, 8))


def test_missing_upstream_partition_fails_the_run_naming_asset_partition_and_path(store: Store, instance) -> None:
    materialize_days(store, instance, daily, days=["2026-01-01", "2026-01-02"])
    result = materialize(
        [daily.to_source_asset(), rolling],
        partition_key="2026-01-03",
        resources={"io_manager": remote_store_io_manager(store)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "asset daily partition '2026-01-03'" in message
    assert "daily/2026-01-03.pkl" in message


def test_none_is_stored_and_loads_back_as_none(store: Store, instance) -> None:
    @asset
    def nothing_yet():
        return None

    @asset
    def sees_none(nothing_yet) -> bool:
        return nothing_yet is None

    result = materialize(
        [nothing_yet, sees_none], resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.success
    assert store.exists("nothing_yet.pkl")
    assert PickleSerializer().deserialize(store.read_bytes("sees_none.pkl")) is True


def test_json_serializer_end_to_end(store: Store, instance) -> None:
    @asset
    def report() -> dict:
        return {"customers": 3, "names": ["ä", "b"]}

    @asset
    def headline(report: dict) -> str:
        return f"{report['customers']} customers"

    resources = {"io_manager": remote_store_io_manager(store, serializer="json")}
    result = materialize([report, headline], resources=resources, instance=instance)
    assert result.success
    assert store.read_bytes("report.json") == '{"customers":3,"names":["ä","b"]}'.encode()
    assert store.read_bytes("headline.json") == b'"3 customers"'


def test_static_and_multi_dimensional_partitions(store: Store, instance) -> None:
    regions = StaticPartitionsDefinition(["eu", "us/west"])
    grid = MultiPartitionsDefinition({"region": regions, "date": DAILY})

    @asset(partitions_def=grid)
    def sales(context) -> str:
        return str(context.partition_key)

    key = MultiPartitionKey({"region": "us/west", "date": "2026-01-02"})
    result = materialize(
        [sales], partition_key=key, resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.success
    # One folder level per dimension, dimensions in sorted order (date, then region); '/' encoded.
    assert stored(store) == ["sales/2026-01-02/us%2Fwest.pkl"]


def test_op_job_outputs_are_stored_per_run_and_loaded_downstream(store: Store, instance) -> None:
    @op(out=Out(int))
    def produce() -> int:
        return 20

    @op(ins={"value": In(int)})
    def consume(value: int) -> int:
        return value + 1

    @job(resource_defs={"io_manager": io_manager(lambda _: remote_store_io_manager(store))})
    def pipeline():
        consume(produce())

    result = pipeline.execute_in_process(instance=instance)
    assert result.success
    run_id = result.run_id
    assert stored(store) == [f"{run_id}/consume/result.pkl", f"{run_id}/produce/result.pkl"]
    assert result.output_for_node("consume") == 21
