"""Column projection: an input with `AssetIn(metadata={"columns": [...]})` gets only those
columns, as pyarrow and polars read them, and a large table has only their bytes read."""

import io

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetIn, asset, materialize
from polars.testing import assert_frame_equal as assert_polars_equal

from dagster_remote_store import (
    ChecksumMismatch,
    InvalidConfig,
    Store,
    dagster_dataset_io_manager,
    remote_store_io_manager,
)
from test_parquet import pandas_frame, polars_frame, pyarrow_table

from conftest import stored

COLUMNS = ["name", "id"]


def load_columns(store: Store, instance, table, annotation, io_manager=None, columns=COLUMNS):
    """What an input annotated `annotation` asking for `columns` receives of `table`."""
    received: list[object] = []

    @asset
    def source() -> annotation:
        return table

    @asset(ins={"source": AssetIn(metadata={"columns": columns})}, io_manager_key="values")
    def reader(source: annotation) -> int:
        received.append(source)
        return 0

    resources = {
        "io_manager": io_manager or remote_store_io_manager(store, serializer="parquet"),
        "values": remote_store_io_manager(store),
    }
    assert materialize([source, reader], resources=resources, instance=instance).success
    return received[0]


def test_a_polars_input_gets_its_columns_as_polars_reads_them(store: Store, instance) -> None:
    got = load_columns(store, instance, polars_frame(), pl.DataFrame)
    reference = pl.read_parquet(io.BytesIO(store.read_bytes("source.parquet")), columns=COLUMNS)
    assert_polars_equal(got, reference)
    assert got.columns == COLUMNS


def test_a_pandas_input_gets_its_columns_and_index_as_pandas_reads_them(store: Store, instance) -> None:
    got = load_columns(store, instance, pandas_frame(), pd.DataFrame)
    reference = pd.read_parquet(io.BytesIO(store.read_bytes("source.parquet")), columns=COLUMNS)
    pd.testing.assert_frame_equal(got, reference)
    assert list(got.columns) == COLUMNS and got.index.name == "key"


def test_a_pyarrow_input_gets_its_columns_as_pyarrow_reads_them(store: Store, instance) -> None:
    got = load_columns(store, instance, pyarrow_table(), pa.Table)
    reference = pq.read_table(io.BytesIO(store.read_bytes("source.parquet")), columns=COLUMNS)
    assert got.equals(reference) and got.column_names == COLUMNS


def test_a_dataset_input_gets_its_columns_from_every_part(store: Store, instance) -> None:
    table = pl.DataFrame({"id": list(range(10)), "name": [f"n{i}" for i in range(10)], "x": [0.5] * 10})
    io_manager = dagster_dataset_io_manager(store, max_rows_per_part=4)
    got = load_columns(store, instance, table, pl.DataFrame, io_manager=io_manager)
    assert_polars_equal(got, table.select(COLUMNS))


def test_a_large_table_has_only_the_blocks_of_its_columns_read(store: Store, instance) -> None:
    # Three columns of 4.8 MB each, stored as one streamed object whose record lists its blocks.
    rng = np.random.default_rng(7)
    table = pl.DataFrame({name: rng.random(600_000) for name in ["a", "b", "c"]})
    got = load_columns(store, instance, table, pl.DataFrame, columns=["b", "a"])
    assert_polars_equal(got, table.select(["b", "a"]))

    # One byte in the middle of column c changed behind the IO manager's back: a load of
    # a and b never reads it, so still succeeds; a load of every column is refused.
    data = bytearray(store.read_bytes("source.parquet"))
    chunk = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(2)
    assert chunk.path_in_schema == "c"
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data[start + chunk.total_compressed_size // 2] ^= 0xFF
    store.write("source.parquet", bytes(data))

    @asset
    def source() -> pl.DataFrame:
        return table

    @asset(ins={"source": AssetIn(metadata={"columns": ["a", "b"]})}, io_manager_key="values")
    def columns_only(source: pl.DataFrame) -> int:
        return source.height

    @asset(ins={"source": AssetIn()}, io_manager_key="values")
    def every_column(source: pl.DataFrame) -> int:
        return source.height

    resources = {
        "io_manager": remote_store_io_manager(store, serializer="parquet"),
        "values": remote_store_io_manager(store),
    }
    result = materialize([source.to_source_asset(), columns_only], resources=resources, instance=instance)
    assert result.output_for_node("columns_only") == 600_000
    with pytest.raises(ChecksumMismatch):
        materialize([source.to_source_asset(), every_column], resources=resources, instance=instance)


def test_an_unknown_column_names_the_column_and_the_asset(store: Store, instance) -> None:
    with pytest.raises(Exception) as raised:
        load_columns(store, instance, polars_frame(), pl.DataFrame, columns=["id", "prices"])
    message = str(raised.value)
    assert "source" in message and 'no column "prices"' in message and "id, price, name" in message, message


def test_columns_of_an_object_that_is_not_a_table_are_refused(store: Store, instance) -> None:
    with pytest.raises(InvalidConfig, match="input 'source': metadata 'columns' needs the 'parquet'"):
        load_columns(store, instance, {"a": 1}, dict, io_manager=remote_store_io_manager(store))
    with pytest.raises(InvalidConfig, match="must be a list of column names, not 'id'"):
        load_columns(store, instance, polars_frame(), pl.DataFrame, columns="id")
    assert stored(store) == ["source.parquet", "source.pkl"]
