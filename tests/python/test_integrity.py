"""Every output's checksum is stored with it and verified on load; corrupt data fails the run."""

from __future__ import annotations

import gc
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    DailyPartitionsDefinition,
    PartitionKeyRange,
    StaticPartitionsDefinition,
    asset,
    build_input_context,
    materialize,
)

from dagster_remote_store import (
    CHECKSUM_RECORDS_SUFFIX,
    AssetMismatch,
    ChecksumMismatch,
    ParquetSerializer,
    Store,
    remote_store_io_manager,
)
from dagster_remote_store._core import IoManagerCore
from dagster_remote_store.backends import LocalBackend

from conftest import has_user_xattrs

DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")


def crc32c(data: bytes) -> str:
    """CRC-32C written out bit by bit: an independent check of the stored checksum."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return f"crc32c:{crc ^ 0xFFFFFFFF:08x}"


def record(path: str, checksum: str) -> str:
    """Where the checksum record of the object at `path` is, for a checksum `crc32c:<hex>`."""
    return f"{path}{CHECKSUM_RECORDS_SUFFIX}/{checksum.replace(':', '-')}"


def corrupt(store: Store, path: str) -> bytes:
    """Changes the stored bytes behind the IO manager's back, keeping the recorded
    checksum (object metadata, or the records beside it); returns the new bytes."""
    data, metadata = store.read_with_metadata(path)
    bad = data[:-1] + bytes([data[-1] ^ 0xFF])
    store.write(path, bad, metadata=metadata or None)
    return bad


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())


@asset
def source() -> dict:
    return {"rows": list(range(100))}


@asset
def consumer(source: dict) -> int:
    return len(source["rows"])


def test_checksum_is_recorded_in_metadata_and_a_corrupt_object_fails_the_run(
    store: Store, instance, tmp_path
) -> None:
    io = remote_store_io_manager(store)
    result = materialize([source], resources={"io_manager": io}, instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    checksum = event.materialization.metadata["checksum"].value
    assert checksum == crc32c(store.read_bytes("source.pkl"))
    has_record = store.exists(record("source.pkl", checksum))
    no_metadata = store.backend.kind == "sftp" or (store.backend.kind == "local" and not has_user_xattrs(tmp_path))
    assert has_record == no_metadata, "metadata where the backend keeps it (local files: an extended attribute)"

    assert materialize([source.to_source_asset(), consumer], resources={"io_manager": io}, instance=instance).success
    actual = crc32c(corrupt(store, "source.pkl"))
    result = materialize(
        [source.to_source_asset(), consumer], resources={"io_manager": io}, instance=instance, raise_on_error=False
    )
    assert not result.success
    message = failure_message(result)
    for part in ["checksum mismatch", "'source.pkl'", checksum, actual]:
        assert part in message.replace('"', "'"), (part, message)

    with pytest.raises(ChecksumMismatch) as raised:
        IoManagerCore(store, "pickle").load_input("source.pkl")
    assert (raised.value.path, raised.value.stored, raised.value.actual) == ("source.pkl", checksum, actual)
    assert raised.value.uri == store.uri("source.pkl")


def test_a_corrupt_partition_fails_a_concurrent_load_of_all_partitions(store: Store, instance) -> None:
    @asset(partitions_def=DAYS)
    def daily(context) -> str:
        return context.partition_key

    @asset(ins={"daily": AssetIn(metadata={"allow_missing_partitions": True})})
    def every_day(daily: dict[str, str]) -> list[str]:
        return sorted(daily)

    io = remote_store_io_manager(store)
    for day in DAYS.get_partition_keys():
        assert materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance).success
    assert materialize([daily.to_source_asset(), every_day], resources={"io_manager": io}, instance=instance).success
    corrupt(store, "daily/2026-01-03.pkl")
    result = materialize(
        [daily.to_source_asset(), every_day], resources={"io_manager": io}, instance=instance, raise_on_error=False
    )
    assert not result.success, "a corrupt partition is not a missing one"
    assert "daily/2026-01-03.pkl" in failure_message(result)


def test_streamed_parquet_larger_than_one_request_is_verified(store: Store, instance) -> None:
    # Random floats do not compress: the file is larger than the 8 MiB single
    # request, so it is uploaded as it is encoded and its checksum goes beside it.
    rng = np.random.default_rng(7)

    @asset(io_manager_key="tables")
    def wide() -> pl.DataFrame:
        return pl.DataFrame({"x": rng.random(1_200_000)})

    @asset
    def wide_rows(wide: pl.DataFrame) -> int:
        return wide.height

    io = remote_store_io_manager(store, serializer="parquet")
    result = materialize([wide], resources={"tables": io}, instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["size_bytes"].value > 8 << 20
    assert store.exists(record("wide.parquet", event.materialization.metadata["checksum"].value))
    resources = {"tables": io, "io_manager": remote_store_io_manager(store)}
    assert materialize([wide.to_source_asset(), wide_rows], resources=resources, instance=instance).success
    corrupt(store, "wide.parquet")
    result = materialize(
        [wide.to_source_asset(), wide_rows], resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert "checksum mismatch" in failure_message(result)


def test_a_large_table_changed_in_the_middle_is_caught(store: Store) -> None:
    # Decoded row group by row group as it arrives, an uncompressed table with one bit
    # flipped would decode to other numbers: the checksum is what catches it.
    frame = pl.DataFrame({"x": np.random.default_rng(3).random(2_500_000)})
    ParquetSerializer(compression="none").write_to(store, "t.parquet", frame)
    data, metadata = store.read_with_metadata("t.parquet")
    middle = len(data) // 2
    store.write("t.parquet", data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :], metadata=metadata or None)
    with pytest.raises(ChecksumMismatch, match=r"t\.parquet"):
        IoManagerCore(store, ParquetSerializer()).load_tables(["t.parquet"])


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this value refuses to be pickled")


def test_large_pickles_stream_both_ways_and_are_verified(store: Store) -> None:
    core = IoManagerCore(store, "pickle")
    frame = pd.DataFrame({name: np.random.default_rng(3).random(400_000) for name in "abcd"})  # 12.8 MB
    written = core.handle_output("big.pkl", frame)
    assert written["size"] > 8 << 20
    # Streamed: the checksum, known only at the end, is recorded beside the object.
    assert store.list("big.pkl" + CHECKSUM_RECORDS_SUFFIX) == [record("big.pkl", written["checksum"])]
    assert pickle.loads(store.read_bytes("big.pkl")).equals(frame), "a plain pickle any tool can read"
    assert core.load_input("big.pkl").equals(frame)

    # A value that fails part-way, after more than one part went out, stores nothing.
    with pytest.raises(TypeError, match="refuses to be pickled"):
        core.handle_output("big.pkl", [frame, Unpicklable()])
    assert core.load_input("big.pkl").equals(frame), "the earlier object is intact"

    corrupt(store, "big.pkl")
    with pytest.raises(ChecksumMismatch, match=r"big\.pkl"):
        core.load_input("big.pkl")


def test_large_buffers_of_every_layout_are_sent_as_they_are(store: Store) -> None:
    # Pickle hands the sink each large buffer itself, which goes out without a copy.
    rng = np.random.default_rng(5)
    values = {
        "bytes": rng.bytes(9 << 20),
        "bytearray": bytearray(rng.bytes(9 << 20)),
        "fortran": np.asfortranarray(rng.random((1200, 1000))),
        "strided": rng.random((1200, 2000))[:, ::2],
        "int8": rng.integers(-100, 100, 10 << 20, dtype=np.int8),
    }
    core = IoManagerCore(store, "pickle")
    for name, value in values.items():
        written = core.handle_output(f"layouts/{name}.pkl", value)
        assert written["size"] > 8 << 20, name
        back = core.load_input(f"layouts/{name}.pkl")
        assert type(back) is type(value), name
        assert (np.array_equal(back, value) if isinstance(value, np.ndarray) else back == value), name


def _resident_kib(field: str) -> int:
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith(field + ":"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak memory is read from Linux's /proc")
def test_a_large_pickle_is_written_from_the_values_own_memory(tmp_path) -> None:
    core = IoManagerCore(Store(LocalBackend(root=str(tmp_path))), "pickle")
    column = np.random.default_rng(7).random(8 << 20)  # 64 MiB
    core.handle_output("first.pkl", column)  # one-time costs (threads, the runtime) out of the figure
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = _resident_kib("VmRSS")
    core.handle_output("big.pkl", column)
    extra_mib = (_resident_kib("VmHWM") - before) / 1024
    # A copy of even the pieces in flight would be 16 MiB or more.
    assert extra_mib < 8, f"{extra_mib:.1f} MiB beyond the value while writing it"
    assert np.array_equal(core.load_input("big.pkl"), column)


def test_one_flipped_byte_in_a_local_file_is_caught(tmp_path, instance) -> None:
    store = Store(LocalBackend(root=str(tmp_path)))
    io = remote_store_io_manager(store)
    assert materialize([source], resources={"io_manager": io}, instance=instance).success
    file = tmp_path / "source.pkl"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match=r"source\.pkl"):
        IoManagerCore(store, "pickle").load_input("source.pkl")


@pytest.mark.parametrize("serializer", ["pickle", "parquet"])
def test_two_assets_on_one_path_never_load_or_replace_each_others_value(store, serializer, instance) -> None:
    # The layout lets asset ["foo"] partition "bar" and asset ["foo", "bar"] share foo/bar.<ext>.
    bars = StaticPartitionsDefinition(["bar"])
    table = pd.DataFrame({"who": ["partitioned"]})

    @asset(key=["foo"], partitions_def=bars)
    def partitioned() -> pd.DataFrame:
        return table

    @asset(key=["foo", "bar"])
    def nested() -> pd.DataFrame:
        return pd.DataFrame({"who": ["nested"]})

    @asset(ins={"upstream": AssetIn(key=["foo", "bar"])})
    def reads_nested(upstream: pd.DataFrame) -> int:
        return len(upstream)

    io = remote_store_io_manager(store, serializer=serializer)
    resources = {"io_manager": io}
    assert materialize([partitioned], partition_key="bar", resources=resources, instance=instance).success
    with pytest.raises(AssetMismatch) as refused:
        materialize([nested], resources=resources, instance=instance)
    for named in ['asset ["foo"], partition "bar"', 'asset ["foo", "bar"]', f"foo/bar.{io._core.extension[1:]}"]:
        assert named in str(refused.value), refused.value
    assert refused.value.stored == 'asset ["foo"], partition "bar"' and refused.value.expected == 'asset ["foo", "bar"]'
    with pytest.raises(AssetMismatch):
        materialize([nested.to_source_asset(), reads_nested], resources=resources, instance=instance)
    loaded = materialize([partitioned.to_source_asset()], resources=resources, instance=instance)
    assert loaded.success
    context = build_input_context(
        asset_key=AssetKey(["foo"]),
        partition_key="bar",
        asset_partition_key_range=PartitionKeyRange("bar", "bar"),
        asset_partitions_def=bars,
        instance=instance,
    )
    assert io.load_input(context).equals(table), "the first asset's value is still there, as it was"
