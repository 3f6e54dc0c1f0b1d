"""Parquet datasets: `dagster_dataset_io_manager` and `serializer="parquet-dataset"`, read and
written in remote-store 0.33's layout, checked against remote-store's own `ParquetDatasetStore`."""

from __future__ import annotations

import json

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    DailyPartitionsDefinition,
    SourceAsset,
    asset,
    build_input_context,
    build_output_context,
    materialize,
)
from polars.testing import assert_frame_equal

from dagster_remote_store import (
    DatasetIncomplete,
    ManifestCorrupted,
    NotFound,
    Store,
    dagster_dataset_io_manager,
    remote_store_io_manager,
)
from dagster_remote_store.backends import LocalBackend

from conftest import stored


def orders(rows: int = 10) -> pl.DataFrame:
    return pl.DataFrame({"id": list(range(rows)), "name": [f"order {i}" for i in range(rows)]})


def test_a_table_is_stored_as_parts_a_manifest_and_a_marker_and_loads_whole(store: Store, instance) -> None:
    loaded: list[object] = []

    @asset
    def table() -> pl.DataFrame:
        return orders(10)

    @asset(ins={"table": AssetIn()}, io_manager_key="values")
    def as_pandas(table: pd.DataFrame) -> int:
        loaded.append(table)
        return len(table)

    resources = {
        "io_manager": dagster_dataset_io_manager(store, max_rows_per_part=4),
        "values": remote_store_io_manager(store),
    }
    result = materialize([table, as_pandas], resources=resources, instance=instance)
    assert result.success
    names = sorted(path.rsplit("/", 1)[1] for path in stored(store, "table/"))
    parts = [name for name in names if name.startswith("part-")]
    assert len(parts) == 3 and names == sorted([*parts, "_SUCCESS", "manifest.json"])
    manifest = json.loads(store.read_bytes("table/manifest.json"))
    assert manifest["parts"] == sorted(parts) and manifest["row_count"] == 10 and manifest["dataset_key"] == "table"
    assert manifest["compression"] == "zstd" and manifest["run_id"] == result.run_id
    [frame] = loaded
    assert isinstance(frame, pd.DataFrame) and frame["id"].tolist() == list(range(10))

    [materialization] = result.asset_materializations_for_node("table")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == 10 and metadata["parts"].value == 3
    assert metadata["checksum"].value.startswith("sha256:")


def test_a_new_write_replaces_the_parts_and_a_failed_one_leaves_the_old_dataset(store: Store, instance) -> None:
    outputs = [orders(10)]

    @asset
    def table() -> object:
        return outputs[-1]

    @asset(io_manager_key="values")
    def count(table: pl.DataFrame) -> int:
        return table.height

    resources = {
        "io_manager": dagster_dataset_io_manager(store, max_rows_per_part=4),
        "values": remote_store_io_manager(store),
    }
    assert materialize([table], resources=resources, instance=instance).success
    first = json.loads(store.read_bytes("table/manifest.json"))["parts"]

    # A write that fails after its first part (rows 4 on do not encode): the manifest still
    # names the old parts, and the old table loads.
    outputs.append(pd.DataFrame({"id": range(8), "name": ["ok"] * 4 + [object()] * 4}))
    assert not materialize([table], resources=resources, instance=instance, raise_on_error=False).success
    assert json.loads(store.read_bytes("table/manifest.json"))["parts"] == first
    left = {path.rsplit("/", 1)[1] for path in stored(store, "table/")}
    assert left == {*first, "manifest.json", "_SUCCESS"}, "the failed write's parts are removed"
    result = materialize([table, count], resources=resources, instance=instance, selection=[count])
    assert result.output_for_node("count") == 10

    outputs.append(orders(6))
    assert materialize([table], resources=resources, instance=instance).success
    second = json.loads(store.read_bytes("table/manifest.json"))["parts"]
    assert len(second) == 2 and not set(first) & set(second)
    left = {path.rsplit("/", 1)[1] for path in stored(store, "table/")}
    assert not set(first) & left, "the replaced parts are removed"
    assert (
        materialize([table, count], resources=resources, instance=instance, selection=[count]).output_for_node("count")
        == 6
    )


def test_parts_of_differing_schemas_are_refused_and_leave_nothing_behind(store: Store) -> None:
    io = dagster_dataset_io_manager(store, max_rows_per_part=2)
    # pandas infers each slice's type on its own: integers in the first part, strings in the second.
    mixed = pd.DataFrame({"id": [1, 2, "three"]}, dtype=object)
    refused = r"asset t: the parts of a dataset must have one schema: part-00001-\w+\.parquet has columns"
    with pytest.raises(TypeError, match=refused):
        io.handle_output(build_output_context(asset_key=AssetKey("t")), mixed)
    assert stored(store, "t/") == []


@pytest.mark.parametrize("rows", [0, 3, 12])
def test_lazy_frames_and_arrow_streams_are_written_part_by_part(store: Store, rows: int) -> None:
    io = dagster_dataset_io_manager(store, max_rows_per_part=5)
    expected = orders(rows)
    batches = expected.to_arrow().to_batches(max_chunksize=2)
    sources = {
        "lazy": pl.concat([expected.slice(start, 3).lazy() for start in range(0, rows, 3)] or [expected.lazy()]),
        "stream": pa.RecordBatchReader.from_batches(expected.to_arrow().schema, batches),
    }
    for name, source in sources.items():
        io.handle_output(build_output_context(asset_key=AssetKey(name)), source)
        manifest = json.loads(store.read_bytes(f"{name}/manifest.json"))
        assert len(manifest["parts"]) == max(1, -(-rows // 5)) and manifest["row_count"] == rows, name
        # Unannotated, each loads as the library of its parts: polars frames, pyarrow Tables.
        loaded = io.load_input(build_input_context(asset_key=AssetKey(name)))
        assert_frame_equal(pl.DataFrame(loaded), expected)


def test_incomplete_and_corrupted_datasets_are_refused(store: Store) -> None:
    io = dagster_dataset_io_manager(store)
    store.write("t/manifest.json", json.dumps({"dataset_key": "t", "parts": [], "row_count": 0}).encode())
    with pytest.raises(ManifestCorrupted, match="'schema_hash' must be str"):
        io.load_input(build_input_context(asset_key=AssetKey("t")))
    manifest = {"dataset_key": "t", "parts": ["p.parquet"], "row_count": 1, "schema_hash": "x", "compression": "zstd"}
    store.write("t/manifest.json", json.dumps({**manifest, "created_at_utc": "2026-01-01T00:00:00+00:00"}).encode())
    with pytest.raises(DatasetIncomplete, match="no _SUCCESS marker"):
        io.load_input(build_input_context(asset_key=AssetKey("t")))
    store.write("t/_SUCCESS", b"")
    with pytest.raises(DatasetIncomplete, match=r"lists 't/p.parquet', which is not there"):
        io.load_input(build_input_context(asset_key=AssetKey("t")))


def test_a_lazy_frame_input_reads_each_part_only_when_the_query_reaches_it(store: Store, instance) -> None:
    seen: dict[str, object] = {}

    @asset
    def table() -> pl.DataFrame:
        return orders(10)

    @asset(io_manager_key="values")
    def query(table: pl.LazyFrame) -> int:
        seen["lazy"] = table
        seen["filtered"] = table.filter(pl.col("id") >= 5).select("name").collect()
        return 0

    resources = {
        "io_manager": dagster_dataset_io_manager(store, max_rows_per_part=4),
        "values": remote_store_io_manager(store),
    }
    assert materialize([table, query], resources=resources, instance=instance).success
    lazy = seen["lazy"]
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(seen["filtered"], orders(10).filter(pl.col("id") >= 5).select("name"))
    assert lazy.collect_schema() == orders(10).schema

    # The last part gone: a query that ends within the first part never asks for it; one that
    # reaches it fails with NotFound, which polars 1 carries (class and text) in a ComputeError
    # and polars 2 raises as it is.
    last = "table/" + json.loads(store.read_bytes("table/manifest.json"))["parts"][-1]
    store.delete(last)
    assert_frame_equal(lazy.head(2).collect(), orders(2))
    assert_frame_equal(lazy.select("id").head(3).collect(), orders(3).select("id"))
    if pl.__version__.startswith("1."):
        raised, text = pl.exceptions.ComputeError, f"NotFound: .*{last}"
    else:
        raised, text = NotFound, last
    with pytest.raises(raised, match=text):
        lazy.collect()


def test_partitions_load_as_one_table_or_as_a_dict(store: Store, instance) -> None:
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")
    seen: dict[str, object] = {}

    @asset(partitions_def=days)
    def daily(context) -> pl.DataFrame:
        day = int(context.partition_key[-1])
        return pl.DataFrame({"day": [day] * day})

    @asset(io_manager_key="values")
    def as_one(daily: pl.DataFrame) -> int:
        seen["one"] = daily
        return daily.height

    @asset(io_manager_key="values")
    def as_dict(daily: dict[str, pa.Table]) -> int:
        seen["dict"] = daily
        return len(daily)

    resources = {
        "io_manager": remote_store_io_manager(store, "parquet-dataset"),
        "values": remote_store_io_manager(store),
    }
    for day in days.get_partition_keys():
        assert materialize([daily], partition_key=day, resources=resources, instance=instance).success
    assert materialize(
        [daily, as_one, as_dict], resources=resources, instance=instance, selection=[as_one, as_dict]
    ).success
    assert_frame_equal(seen["one"], pl.DataFrame({"day": [1, 2, 2, 3, 3, 3]}))
    by_day = seen["dict"]
    assert isinstance(by_day, dict) and list(by_day) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(isinstance(table, pa.Table) for table in by_day.values())


def test_remote_store_and_we_load_what_the_other_wrote(tmp_path, instance) -> None:
    pytest.importorskip("remote_store.ext.parquet", reason="remote-store is not installed in the oldest venv")
    from remote_store import Store as TheirStore
    from remote_store.backends import LocalBackend as TheirLocalBackend
    from remote_store.ext.parquet import ParquetDatasetStore

    theirs = ParquetDatasetStore(TheirStore(TheirLocalBackend(str(tmp_path))), max_rows_per_file=3)
    theirs.write_dataset(orders(7).to_arrow(), "from_them", overwrite=True)
    ours = Store(LocalBackend(root=str(tmp_path)))

    @asset
    def from_us() -> pl.DataFrame:
        return orders(5)

    @asset(ins={"from_them": AssetIn()}, io_manager_key="values")
    def read_theirs(from_them: pl.DataFrame) -> int:
        assert_frame_equal(from_them, orders(7))
        return from_them.height

    io = dagster_dataset_io_manager(ours, max_rows_per_part=2)
    resources = {"io_manager": io, "values": remote_store_io_manager(ours)}
    result = materialize([from_us, SourceAsset("from_them"), read_theirs], resources=resources, instance=instance)
    assert result.success and result.output_for_node("read_theirs") == 7
    back = theirs.read_dataset("from_us")
    assert back.num_rows == 5 and back.column("id").to_pylist() == list(range(5))
