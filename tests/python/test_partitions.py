"""Every partition shape Dagster has, and the outputs that are not stored, through real runs."""

from __future__ import annotations

import types
from typing import Optional

import pytest
from dagster import (
    AssetIn,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DynamicOut,
    DynamicOutput,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
    build_input_context,
    io_manager,
    job,
    materialize,
    op,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from dagster_remote_store import PickleSerializer, Store, remote_store_io_manager
from dagster_remote_store.io_manager import _maps_to_several

from conftest import stored

DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-06")
WEIRD_KEYS = ["a/b", "..", ".hidden", "with space", "ünïcode ✓", "50%", "back\\slash"]


def load(store: Store, path: str):
    return PickleSerializer().deserialize(store.read_bytes(path))


def test_dynamic_partition_keys_are_encoded_and_round_trip(store: Store, instance) -> None:
    customers = DynamicPartitionsDefinition(name="customers")
    instance.add_dynamic_partitions("customers", WEIRD_KEYS)

    @asset(partitions_def=customers)
    def profile(context) -> str:
        return context.partition_key

    @asset(ins={"profile": AssetIn()})
    def every_profile(profile: dict[str, str]) -> dict[str, str]:
        return profile

    io = remote_store_io_manager(store)
    for key in WEIRD_KEYS:
        assert materialize([profile], partition_key=key, resources={"io_manager": io}, instance=instance).success
    assets = [profile.to_source_asset(), every_profile]
    assert materialize(assets, resources={"io_manager": io}, instance=instance).success
    assert load(store, "every_profile.pkl") == {key: key for key in WEIRD_KEYS}
    paths = stored(store, "profile")
    assert len(paths) == len(WEIRD_KEYS) and all(path.count("/") == 1 for path in paths), paths


@asset(partitions_def=DAYS)
def daily(context) -> int:
    return int(context.partition_key[-1])


def test_allow_missing_partitions_skips_what_was_never_stored(store: Store, instance) -> None:
    @asset(ins={"daily": AssetIn(metadata={"allow_missing_partitions": True})})
    def total(daily: dict[str, int]) -> dict[str, int]:
        return daily

    io = remote_store_io_manager(store)
    for day in ["2026-01-02", "2026-01-04"]:
        assert materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance).success
    assert materialize([daily.to_source_asset(), total], resources={"io_manager": io}, instance=instance).success
    assert load(store, "total.pkl") == {"2026-01-02": 2, "2026-01-04": 4}


def test_optional_input_of_a_missing_object_is_none(store: Store, instance) -> None:
    @asset
    def maybe() -> int:
        return 1

    @asset
    def uses_maybe(maybe: Optional[int]) -> str:
        return "absent" if maybe is None else "present"

    io = remote_store_io_manager(store)
    assert materialize([maybe.to_source_asset(), uses_maybe], resources={"io_manager": io}, instance=instance).success
    assert load(store, "uses_maybe.pkl") == "absent"


def test_none_annotated_and_materialize_result_assets_are_not_stored(store: Store, instance) -> None:
    @asset
    def side_effect() -> None:
        pass

    @asset
    def reported() -> MaterializeResult:
        return MaterializeResult(metadata={"rows": 3})

    resources = {"io_manager": remote_store_io_manager(store)}
    result = materialize([side_effect, reported], resources=resources, instance=instance)
    assert result.success
    assert stored(store) == []


def test_single_run_backfill_writes_one_object_per_partition(store: Store, instance) -> None:
    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def ranged(context) -> dict[str, int]:
        return {key: int(key[-1]) * 10 for key in context.partition_keys}

    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-01-02", ASSET_PARTITION_RANGE_END_TAG: "2026-01-04"}
    resources = {"io_manager": remote_store_io_manager(store)}
    result = materialize([ranged], tags=tags, resources=resources, instance=instance)
    assert result.success
    assert stored(store) == [f"ranged/2026-01-0{d}.pkl" for d in (2, 3, 4)]
    assert load(store, "ranged/2026-01-03.pkl") == 30


def test_single_run_backfill_with_the_wrong_keys_fails_clearly(store: Store, instance) -> None:
    @asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
    def sloppy(context) -> dict[str, int]:
        return {"2026-01-02": 1}

    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-01-02", ASSET_PARTITION_RANGE_END_TAG: "2026-01-03"}
    resources = {"io_manager": remote_store_io_manager(store)}
    result = materialize([sloppy], tags=tags, resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    message = "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "asset sloppy runs for 2 partitions" in message and "asset asset" not in message and "2026-01-03" in message
    assert stored(store) == [], "nothing is written when the keys do not match"


def test_dynamic_op_outputs_are_stored_per_mapping_key(store: Store, instance) -> None:
    @op(out=DynamicOut(int))
    def fan_out():
        for n in (1, 2, 3):
            yield DynamicOutput(n, mapping_key=f"n{n}")

    @op
    def square(n: int) -> int:
        return n * n

    @op
    def add(values: list[int]) -> int:
        return sum(values)

    @job(resource_defs={"io_manager": io_manager(lambda _: remote_store_io_manager(store))})
    def fan():
        add(fan_out().map(square).collect())

    result = fan.execute_in_process(instance=instance)
    assert result.success and result.output_for_node("add") == 14
    run = result.run_id
    assert f"{run}/fan_out/result/n2.pkl" in stored(store)
    assert f"{run}/square[n3]/result.pkl" in stored(store)


def test_hand_built_contexts_read_as_one_to_one() -> None:
    context = build_input_context(asset_key=AssetKey("daily"), partition_key="2026-01-02", asset_partitions_def=DAYS)
    assert not _maps_to_several(context)


def test_a_dagster_whose_internals_moved_fails_loudly_instead_of_guessing() -> None:
    # A run's context whose asset layer has neither spelling of the lookup the mapping needs.
    step = types.SimpleNamespace(job_def=types.SimpleNamespace(asset_layer=object()), node_handle=None)
    context = types.SimpleNamespace(step_context=step, name="daily", asset_key=AssetKey("daily"))
    with pytest.raises(RuntimeError, match=r"partition mapping of input 'daily' from dagster \d"):
        _maps_to_several(context)
