"""The Parquet serializer: polars, pandas and pyarrow tables through Rust, on every backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from dagster import AssetIn, asset, materialize
from polars.testing import assert_frame_equal as assert_polars_equal

from dagster_remote_store import DeserializationError, ParquetSerializer, Store, remote_store_io_manager
from dagster_remote_store._core import BuiltinSerializer, IoManagerCore
from dagster_remote_store.serializers import serializer_names

from conftest import stored

LIBRARY_KEY = b"dagster_remote_store.library"


def polars_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "price": [1.5, None, -2.25],
            "name": ["ada", None, "grâce"],
            "active": [True, False, None],
            "at": [datetime(2026, 1, 1, 12, tzinfo=timezone.utc), None, datetime(1970, 1, 1, tzinfo=timezone.utc)],
        },
        schema_overrides={"id": pl.Int32, "at": pl.Datetime("us", "UTC")},
    )


def pandas_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="int64"),
            "price": [1.5, float("nan"), -2.25],
            "name": ["ada", None, "grâce"],
            "active": pd.array([True, False, None], dtype="boolean"),
            "at": pd.to_datetime(["2026-01-01 12:00", None, "1970-01-01 00:00"], utc=True),
        },
        index=pd.Index(["a", "b", "c"], name="key"),
    )


def pyarrow_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "price": pa.array([1.5, None, -2.25]),
            "name": pa.array(["ada", None, "grâce"]),
            "active": pa.array([True, False, None]),
            "at": pa.array([datetime(2026, 1, 1, 12), None, datetime(1970, 1, 1)], pa.timestamp("ms", tz="UTC")),
        }
    )


def footer_metadata(data: bytes) -> dict[bytes, bytes]:
    """The file's key-value metadata as pyarrow reads it: an independent Parquet reader."""
    import io

    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(data)).metadata.metadata


def roundtrip(store: Store, obj, path: str = "t.parquet", **deserialize):
    serializer = ParquetSerializer()
    store.write(path, serializer.serialize(obj))
    return serializer.deserialize(store.read_bytes(path), **deserialize)


def test_parquet_is_registered_and_exported() -> None:
    assert "parquet" in serializer_names()
    serializer = ParquetSerializer()
    assert isinstance(serializer, BuiltinSerializer)
    assert (serializer.name, serializer.extension, serializer.compression) == ("parquet", ".parquet", "zstd")
    assert repr(ParquetSerializer("snappy")) == "ParquetSerializer(compression='snappy')"


def test_polars_roundtrip_keeps_values_and_dtypes(store: Store) -> None:
    df = polars_frame()
    back = roundtrip(store, df)
    assert isinstance(back, pl.DataFrame)
    assert_polars_equal(back, df)
    assert back.schema == df.schema


def test_polars_lazyframe_round_trips(store: Store) -> None:
    df = polars_frame()
    back = roundtrip(store, df.lazy().filter(pl.col("id") > 1))
    assert_polars_equal(back, df.filter(pl.col("id") > 1))


def test_a_lazyframe_output_is_written_as_a_streaming_query_never_collected(
    store: Store, instance, tmp_path, monkeypatch
) -> None:
    rows = 2_000_000  # about 30 MiB in memory: many of polars' batches, two row groups
    frame = pl.DataFrame({"n": pl.int_range(rows, eager=True), "s": pl.int_range(rows, eager=True).cast(pl.Utf8)})
    frame.write_parquet(tmp_path / "source.parquet")
    expected = frame.filter(pl.col("n") % 3 != 0)

    @asset
    def thirds() -> pl.LazyFrame:
        return pl.scan_parquet(tmp_path / "source.parquet").filter(pl.col("n") % 3 != 0)

    def collect(*args, **kwargs):
        raise AssertionError("the LazyFrame was collected")

    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    io_manager = remote_store_io_manager(store, serializer="parquet")
    result = materialize([thirds], resources={"io_manager": io_manager}, instance=instance)
    monkeypatch.undo()
    assert result.success
    [materialization] = result.asset_materializations_for_node("thirds")
    assert materialization.metadata["dagster/row_count"].value == expected.height
    [loaded] = IoManagerCore(store, ParquetSerializer()).load_tables(["thirds.parquet"], into="polars")
    assert_polars_equal(loaded, expected)


def test_a_lazyframe_of_categories_is_collected_and_keeps_them(store: Store) -> None:
    # Only polars' own writer stores a dictionary's categories as they are, and it writes DataFrames.
    df = pl.DataFrame({"c": pl.Series(["a", "b", None], dtype=pl.Enum(["b", "a", "unused"])), "n": [1, 2, 3]})
    back = roundtrip(store, df.lazy())
    assert_polars_equal(back, df)
    assert back.schema["c"] == pl.Enum(["b", "a", "unused"])


def test_a_lazyframe_whose_query_fails_midway_stores_nothing(store: Store) -> None:
    store.write("kept.parquet", b"old")
    numbers = pl.DataFrame({"s": [str(i) for i in range(1_000_000)] + ["not a number"]})
    query = numbers.lazy().select(pl.col("s").cast(pl.Int64))  # a strict cast: the last row fails
    with pytest.raises(Exception, match="not a number"):
        ParquetSerializer().write_to(store, "kept.parquet", query)
    assert store.read_bytes("kept.parquet") == b"old"
    assert stored(store) == ["kept.parquet"]


def test_pandas_roundtrip_keeps_values_dtypes_and_index(store: Store) -> None:
    df = pandas_frame()
    back = roundtrip(store, df)
    assert isinstance(back, pd.DataFrame)
    pd.testing.assert_frame_equal(back, df)


def test_pyarrow_roundtrip_keeps_values_and_types(store: Store) -> None:
    table = pyarrow_table()
    back = roundtrip(store, table)
    assert isinstance(back, pa.Table)
    assert back.equals(table)
    assert back.schema.field("at").type == pa.timestamp("ms", tz="UTC")


def test_pyarrow_record_batch_reader_streams_batches(store: Store) -> None:
    table = pyarrow_table()

    def batches():  # a Python generator: the Rust encoder calls back into Python for each batch
        for _ in range(5):
            yield from table.to_batches()

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    back = roundtrip(store, reader)
    assert isinstance(back, pa.Table)
    assert back.equals(pa.concat_tables([table] * 5))


def test_empty_table_keeps_its_schema(store: Store) -> None:
    df = polars_frame().clear()
    back = roundtrip(store, df)
    assert back.schema == df.schema
    assert back.height == 0


@pytest.mark.parametrize(
    ("into", "expected_type"),
    [("polars", pl.DataFrame), ("polars_lazy", pl.LazyFrame), ("pandas", pd.DataFrame), ("pyarrow", pa.Table)],
)
@pytest.mark.parametrize("make", [polars_frame, pandas_frame, pyarrow_table])
def test_into_converts_across_libraries(store: Store, make, into: str, expected_type: type) -> None:
    back = roundtrip(store, make(), into=into)
    assert isinstance(back, expected_type)
    as_polars = pl.from_arrow(back) if isinstance(back, pa.Table) else back
    if isinstance(back, pd.DataFrame):
        as_polars = pl.from_pandas(back)
    if isinstance(back, pl.LazyFrame):
        as_polars = back.collect()
    assert as_polars["id"].to_list() == [1, 2, 3]
    assert as_polars["name"].to_list() == ["ada", None, "grâce"]


def test_into_rejects_unknown_targets(store: Store) -> None:
    data = ParquetSerializer().serialize(polars_frame())
    with pytest.raises(
        ValueError, match=r"into must be one of 'polars', 'polars_lazy', 'pandas', 'pyarrow' or None, not 'numpy'"
    ):
        ParquetSerializer().deserialize(data, into="numpy")


@pytest.mark.parametrize(
    ("obj", "library"),
    [(polars_frame(), b"polars"), (pandas_frame(), b"pandas"), (pyarrow_table(), b"pyarrow")],
)
def test_writing_library_is_recorded(obj, library: bytes) -> None:
    data = ParquetSerializer().serialize(obj)
    assert footer_metadata(data)[LIBRARY_KEY] == library
    assert ParquetSerializer.describe(data)["library"] == library.decode()


def test_other_arrow_producers_read_back_as_pyarrow() -> None:
    class Exporter:
        """Any object with the Arrow PyCapsule stream interface."""

        def __arrow_c_stream__(self, requested_schema=None):
            return pyarrow_table().__arrow_c_stream__(requested_schema)

    data = ParquetSerializer().serialize(Exporter())
    assert footer_metadata(data)[LIBRARY_KEY] == __name__.split(".")[0].encode()
    assert ParquetSerializer().deserialize(data).equals(pyarrow_table())


class Relation:
    """A table of another library that converts to pyarrow with `to_arrow()` but has no
    `__arrow_c_stream__` (older DuckDB relations, Ibis tables)."""

    def to_arrow(self) -> pa.Table:
        return pyarrow_table()


def test_tables_with_to_arrow_are_stored_and_load_as_pyarrow(store: Store, instance) -> None:
    loaded: list[pa.Table] = []

    @asset
    def relation() -> Relation:
        return Relation()

    @asset(io_manager_key="values")
    def rows(relation: pa.Table) -> int:
        loaded.append(relation)
        return relation.num_rows

    resources = {
        "io_manager": remote_store_io_manager(store, serializer="parquet"),
        "values": remote_store_io_manager(store),
    }
    result = materialize([relation, rows], resources=resources, instance=instance)
    assert result.success
    [table] = loaded
    assert table.equals(pyarrow_table())
    assert result.output_for_node("rows") == 3


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [({"a": [1]}, "dict"), ([1, 2], "list"), (None, "NoneType"), (pl.Series("a", [1, 2]), "Series")],
)
def test_a_non_table_is_a_type_error_naming_the_type(obj, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"parquet serializer needs a table \(.*\), got {type_name}\b"):
        ParquetSerializer().serialize(obj)


def test_garbage_is_a_deserialization_error() -> None:
    with pytest.raises(DeserializationError, match="parquet serializer could not decode the data"):
        ParquetSerializer().deserialize(b"not parquet")
    with pytest.raises(DeserializationError):
        ParquetSerializer.describe(b"")


@pytest.mark.parametrize("compression", ["zstd", "snappy", "none"])
def test_compression_is_recorded_in_the_file(store: Store, compression: str) -> None:
    import io

    import pyarrow.parquet as pq

    df = pl.DataFrame({"x": list(range(10_000)), "s": ["same text"] * 10_000})
    serializer = ParquetSerializer(compression=compression)
    data = serializer.serialize(df)
    assert ParquetSerializer.describe(data)["compression"] == compression
    written = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0).compression
    assert written == {"zstd": "ZSTD", "snappy": "SNAPPY", "none": "UNCOMPRESSED"}[compression]
    store.write("c.parquet", data)
    assert_polars_equal(serializer.deserialize(store.read_bytes("c.parquet")), df)


def test_bad_compression_lists_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r'unknown parquet compression "gzip"; accepted: "zstd", "snappy", "none"'):
        ParquetSerializer(compression="gzip")


def test_describe_reads_row_count_and_schema() -> None:
    big = pl.concat([polars_frame()] * 1000)
    info = ParquetSerializer.describe(ParquetSerializer().serialize(big))
    assert info["row_count"] == 3000
    assert [name for name, _ in info["columns"]] == ["id", "price", "name", "active", "at"]
    types = dict(info["columns"])
    assert types["id"] == "Int32"
    assert types["price"] == "Float64"
    assert "Utf8" in types["name"]  # polars writes Utf8View
    assert types["active"] == "Boolean"
    assert types["at"].startswith("Timestamp(") and "UTC" in types["at"]
    assert info["compression"] == "zstd"


POLARS_ONLY = textwrap.dedent(
    """
    import sys
    sys.modules["pyarrow"] = None  # `import pyarrow` now raises ImportError, as if it were not installed
    import polars as pl
    from dagster_remote_store import ParquetSerializer

    df = pl.DataFrame({"id": [1, 2, None], "name": ["a", None, "c"]})
    serializer = ParquetSerializer()
    data = serializer.serialize(df)
    back = serializer.deserialize(data)
    assert isinstance(back, pl.DataFrame) and back.equals(df), back
    assert serializer.deserialize(data, into="polars_lazy").collect().equals(df)
    assert ParquetSerializer.describe(data)["row_count"] == 3
    for into in ["pyarrow", "pandas"]:
        try:
            serializer.deserialize(data, into=into)
        except ImportError as e:
            print(into, e)
        else:
            raise AssertionError(into)
    import pandas as pd
    try:
        serializer.serialize(pd.DataFrame({"a": [1]}))
    except ImportError as e:
        print("write pandas", e)
    else:
        raise AssertionError("pandas without pyarrow")
    assert "pyarrow" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
    """
)


def test_polars_works_without_pyarrow() -> None:
    out = subprocess.run([sys.executable, "-c", POLARS_ONLY], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "pyarrow the parquet serializer needs pyarrow for pyarrow Tables: pip install pyarrow",
        "pandas the parquet serializer needs pyarrow for pandas DataFrames: pip install pyarrow",
        "write pandas the parquet serializer needs pyarrow for pandas DataFrames: pip install pyarrow",
    ]


def test_io_manager_stores_polars_assets_as_parquet(store: Store, instance) -> None:
    seen: list[object] = []

    @asset(key_prefix=["sales"])
    def orders() -> pl.DataFrame:
        return polars_frame()

    @asset(ins={"orders": AssetIn(key=["sales", "orders"])})
    def order_count(orders: pl.DataFrame) -> pl.DataFrame:
        seen.append(orders)
        return pl.DataFrame({"n": [orders.height]})

    io_manager = remote_store_io_manager(store, serializer="parquet")
    result = materialize([orders, order_count], resources={"io_manager": io_manager}, instance=instance)
    assert result.success
    assert stored(store) == ["order_count.parquet", "sales/orders.parquet"]
    [received] = seen
    assert isinstance(received, pl.DataFrame)
    assert_polars_equal(received, polars_frame())
    count = ParquetSerializer().deserialize(store.read_bytes("order_count.parquet"))
    assert_polars_equal(count, pl.DataFrame({"n": [3]}))
    assert ParquetSerializer.describe(store.read_bytes("sales/orders.parquet"))["row_count"] == 3


def test_inputs_load_as_their_annotation_asks(store: Store, instance) -> None:
    @asset
    def orders() -> pl.DataFrame:
        return polars_frame()

    # The readers return plain values, stored through a pickle IO manager.
    @asset(io_manager_key="values")
    def as_pandas(orders: pd.DataFrame) -> str:
        return type(orders).__module__.split(".")[0]

    @asset(io_manager_key="values")
    def as_lazy(orders: pl.LazyFrame) -> str:
        return type(orders).__name__

    @asset(io_manager_key="values")
    def as_arrow(orders: pa.Table) -> int:
        return orders.num_rows

    @asset(io_manager_key="values")
    def as_written(orders) -> str:
        return type(orders).__module__.split(".")[0]

    resources = {
        "io_manager": remote_store_io_manager(store, serializer="parquet"),
        "values": remote_store_io_manager(store),
    }
    result = materialize([orders, as_pandas, as_lazy, as_arrow, as_written], resources=resources, instance=instance)
    assert result.success
    assert result.output_for_node("as_pandas") == "pandas"
    assert result.output_for_node("as_lazy") == "LazyFrame"
    assert result.output_for_node("as_arrow") == 3
    assert result.output_for_node("as_written") == "polars"


def test_table_metadata_follows_dagster_conventions(store: Store, instance) -> None:
    from dagster import DailyPartitionsDefinition

    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03")

    @asset
    def whole() -> pl.DataFrame:
        return polars_frame()

    @asset(partitions_def=days)
    def daily(context) -> pl.DataFrame:
        return polars_frame().head(2)

    @asset
    def both_days(daily: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return pl.concat(list(daily.values()))

    io = remote_store_io_manager(store, serializer="parquet")
    result = materialize([whole], resources={"io_manager": io}, instance=instance)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 3
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == ["id", "price", "name", "active", "at"]
    assert metadata["compression"].value.lower().startswith("zstd")
    assert metadata["dagster/uri"].value == store.uri("whole.parquet")
    for day in ["2026-01-01", "2026-01-02"]:
        result = materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance)
        [event] = result.get_asset_materialization_events()
        assert event.materialization.metadata["dagster/partition_row_count"].value == 2
    result = materialize([daily.to_source_asset(), both_days], resources={"io_manager": io}, instance=instance)
    assert result.success
    assert ParquetSerializer().deserialize(store.read_bytes("both_days.parquet")).height == 4


def test_a_non_table_output_names_the_asset_and_the_type(store: Store, instance) -> None:
    @asset
    def not_a_table() -> dict:
        return {"a": 1}

    result = materialize(
        [not_a_table],
        resources={"io_manager": remote_store_io_manager(store, serializer="parquet")},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "TypeError: asset not_a_table: parquet serializer needs a table" in message and "got dict" in message


def test_write_to_streams_large_tables_and_reports_what_it_wrote(store: Store) -> None:
    rows = 3_000_000  # about 30 MiB of Parquet: several multipart parts
    frame = pl.DataFrame({"n": pl.int_range(rows, eager=True), "s": pl.int_range(rows, eager=True).cast(pl.Utf8)})
    written = ParquetSerializer(compression="none").write_to(store, "big/table.parquet", frame)
    assert written["row_count"] == rows and written["size"] == store.head("big/table.parquet").size
    assert written["uri"] == store.uri("big/table.parquet") and written["columns"][0][0] == "n"
    assert_polars_equal(ParquetSerializer().deserialize(store.read_bytes("big/table.parquet")), frame)
    # Over 16 MiB a load decodes row groups (three here) while the rest of the file arrives.
    [loaded] = IoManagerCore(store, ParquetSerializer()).load_tables(["big/table.parquet"], into="polars")
    assert_polars_equal(loaded, frame)


@pytest.mark.parametrize("into", [None, "pandas"])
def test_a_large_table_whose_row_groups_do_not_decode_names_its_path(store: Store, into: str | None) -> None:
    # Its footer reads, so decoding starts as the file arrives; the first page headers are
    # garbage, and nothing records a checksum that would catch it first. As pandas, the
    # table is one block, decoded into the frame until the garbage stops it.
    data = ParquetSerializer(compression="none").serialize(pl.DataFrame({"x": pl.int_range(3_000_000, eager=True)}))
    store.write("broken.parquet", data[:4] + b"\xff" * 4096 + data[4 + 4096 :])
    with pytest.raises(DeserializationError, match=r"broken\.parquet"):
        IoManagerCore(store, ParquetSerializer()).load_tables(["broken.parquet"], into=into)


PANDAS_LOAD_PEAK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import pandas, pyarrow  # imported before the peak starts: a first import takes memory too
    from dagster_remote_store import ParquetSerializer, Store
    from dagster_remote_store._core import IoManagerCore
    from dagster_remote_store.backends import MemoryBackend

    def status(field):
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field))
        return int(line.split()[1]) / 1024

    store = Store(MemoryBackend())
    store.write("t.parquet", Path(sys.argv[1]).read_bytes())
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    base = status("VmRSS:")
    [frame] = IoManagerCore(store, ParquetSerializer()).load_tables(["t.parquet"], into="pandas")
    frame.iloc[0, 0] = 0.5  # writable, as pyarrow's to_pandas() makes frames
    print(status("VmHWM:") - base - frame.memory_usage(index=False).sum() / 2**20)
    """
)


def pandas_load_peak(tmp_path, table: pa.Table) -> float:
    """MiB a fresh process holds at its peak, beyond the frame, while it loads `table` as pandas.
    A fresh process: nothing before the load left memory it could reuse."""
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "t.parquet", compression="none", use_dictionary=False, row_group_size=1 << 20)
    command = [sys.executable, "-c", PANDAS_LOAD_PEAK, str(tmp_path / "t.parquet")]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return float(out.stdout)


def test_a_large_pandas_load_never_holds_the_table_and_the_frame_whole(tmp_path) -> None:
    # 128 MiB in 8 columns of two types (two blocks in the frame, so through pyarrow's
    # to_pandas) and 2 row groups. The Arrow table and the frame it becomes would both be
    # whole if pyarrow could not let go of each column as it copies it.
    import numpy as np

    rng = np.random.default_rng(0)
    columns = {name: rng.random(2 << 20) for name in "abcdefg"}
    table = pa.table({**columns, "h": rng.integers(0, 1 << 60, 2 << 20)})
    peak = pandas_load_peak(tmp_path, table)
    assert peak < 64, f"{peak:.0f} MiB beyond the 128 MiB frame"


def test_a_large_pandas_load_of_one_block_is_decoded_into_the_frame(tmp_path) -> None:
    # 128 MiB in 2 float columns: pandas holds them in one block, which the row groups are
    # decoded into as they arrive. Through an Arrow table, a whole 64 MiB column would be
    # held beside the frame while pyarrow copies it.
    import numpy as np

    rng = np.random.default_rng(0)
    peak = pandas_load_peak(tmp_path, pa.table({name: rng.random(8 << 20) for name in "ab"}))
    assert peak < 40, f"{peak:.0f} MiB beyond the 128 MiB frame"


def one_block_frames() -> dict:
    """Each case's table from a random generator, built only when its test runs: each is tens of MiB."""
    import numpy as np

    rows = 3 << 20  # 24 MiB a float column: decoded as it arrives

    def with_attrs(rng):
        frame = pd.DataFrame({"a": rng.random(rows), "b": rng.random(rows)})
        frame.attrs["source"] = "sensor"
        return frame

    return {
        "float64": lambda rng: pd.DataFrame({name: rng.random(rows) for name in "abc"}),
        "int32, a named range index": lambda rng: pd.DataFrame(
            {name: rng.integers(-(1 << 31), 1 << 31, rows, dtype="int32") for name in "ab"},
            index=pd.RangeIndex(10, 10 + 2 * rows, 2, name="i"),
        ),
        "uint8": lambda rng: pd.DataFrame({name: rng.integers(0, 256, 8 * rows, dtype="uint8") for name in "ab"}),
        "attrs": with_attrs,
        "NaN, not null": lambda rng: pd.DataFrame(
            {"a": rng.random(rows), "b": np.where(rng.random(rows) < 0.1, np.nan, 1.0)}
        ),
        "integer labels": lambda rng: pd.DataFrame(rng.random((rows, 2))),
        # Not one block, or with an index that is not a range: through to_pandas.
        "two dtypes": lambda rng: pd.DataFrame({"a": rng.random(rows), "b": rng.integers(0, 1 << 60, rows)}),
        "nulls": lambda rng: pd.DataFrame({"a": pd.array(np.where(rng.random(rows) < 0.1, None, 1), dtype="Int64")}),
        "an index of its own": lambda rng: pd.DataFrame({"a": rng.random(rows)}, index=pd.Index(np.arange(rows) * 3)),
        "pyarrow, no pandas metadata": lambda rng: pa.table({name: rng.random(rows) for name in "ab"}),
    }


@pytest.mark.parametrize("case", list(one_block_frames()))
def test_a_large_pandas_load_is_the_frame_pyarrow_makes(case: str) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from dagster_remote_store.backends import MemoryBackend

    store = Store(MemoryBackend())
    table = one_block_frames()[case](np.random.default_rng(1))
    ParquetSerializer(compression="none").write_to(store, "t.parquet", table)
    [frame] = IoManagerCore(store, ParquetSerializer()).load_tables(["t.parquet"], into="pandas")
    expected = pq.read_table(pa.BufferReader(store.read_bytes("t.parquet"))).to_pandas()
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame.attrs == expected.attrs
    assert frame._mgr.nblocks == expected._mgr.nblocks, "consolidated as pyarrow consolidates"
    frame.iloc[0, 0] = 1  # writable


def with_a_footer_that_hides_its_null(data: bytes) -> bytes:
    """`data`, a file with one null, with that column chunk's null count in the footer
    changed from 1 to 0. Thrift's compact encoding writes a count of 1 as 0x02 and 0 as 0x00
    after a field header ending in 6 (an i64), so one byte changes and the footer keeps its
    length; each place that could be it is tried until pyarrow reads the footer as intended."""
    import pyarrow.parquet as pq

    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    for at in range(footer, len(data) - 9):
        if data[at] not in (0x16, 0x26, 0x36) or data[at + 1] != 0x02:
            continue
        lie = data[: at + 1] + b"\x00" + data[at + 2 :]
        try:
            meta = pq.ParquetFile(pa.BufferReader(lie)).metadata
        except (OSError, ValueError):
            continue
        chunks = [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]
        if all(chunk.statistics.null_count == 0 for chunk in chunks):
            return lie
    raise AssertionError("no null count of 1 in the footer")


def test_a_large_pandas_load_whose_footer_hides_a_null_is_the_frame_pyarrow_makes() -> None:
    # The footer says one float block without nulls, so the frame is filled as the row
    # groups arrive, until the second one holds a null: then the file is read again
    # through pyarrow, and the null is NaN, not whatever value its slot held.
    import numpy as np
    import pyarrow.parquet as pq

    from dagster_remote_store.backends import MemoryBackend

    rows, rng = 3 << 20, np.random.default_rng(3)
    written = pd.DataFrame({name: rng.random(rows) for name in "ab"})
    written.loc[(1 << 20) + 5, "b"] = np.nan  # a null once in Arrow
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(written), sink, compression="none", row_group_size=1 << 20)
    lie = with_a_footer_that_hides_its_null(sink.getvalue().to_pybytes())
    assert pq.read_table(pa.BufferReader(lie)).column("b").null_count == 1
    store = Store(MemoryBackend())
    store.write("lie.parquet", lie)
    [frame] = IoManagerCore(store, ParquetSerializer()).load_tables(["lie.parquet"], into="pandas")
    pd.testing.assert_frame_equal(frame, written, check_exact=True)


def test_a_large_pandas_load_over_every_backend_is_the_frame_written(store: Store) -> None:
    import numpy as np

    rng = np.random.default_rng(2)
    written = pd.DataFrame({name: rng.random(1 << 21) for name in "ab"}, index=pd.RangeIndex(5, 5 + (1 << 21)))
    ParquetSerializer(compression="none").write_to(store, "t.parquet", written)
    [frame] = IoManagerCore(store, ParquetSerializer()).load_tables(["t.parquet"])
    pd.testing.assert_frame_equal(frame, written, check_exact=True)


def test_a_large_object_that_is_not_parquet_names_its_path(store: Store) -> None:
    store.write("junk.parquet", b"x" * (20 << 20))
    with pytest.raises(DeserializationError, match=r"junk\.parquet"):
        IoManagerCore(store, ParquetSerializer()).load_tables(["junk.parquet"])


def test_a_table_that_fails_mid_stream_stores_nothing(store: Store) -> None:
    store.write("kept.parquet", b"old")
    schema = pa.schema([("n", pa.int64())])

    def batches():
        yield pa.record_batch([pa.array(range(1_000_000))], schema=schema)
        raise RuntimeError("the producer failed")

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(Exception, match="the producer failed"):
        ParquetSerializer().write_to(store, "kept.parquet", reader)
    assert store.read_bytes("kept.parquet") == b"old"
    assert stored(store) == ["kept.parquet"]
