"""Pickle loads that fail say where and why, and loads restricted to an allow-list of
globals run nothing a pickle from a shared bucket asks for."""

from __future__ import annotations

import collections
import datetime
import decimal
import os
import pickle
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    DailyPartitionsDefinition,
    PartitionKeyRange,
    TimeWindowPartitionMapping,
    asset,
    build_input_context,
    build_output_context,
    materialize,
)

from dagster_remote_store import (
    DeserializationError,
    InvalidConfig,
    PickleSerializer,
    RemoteStoreIOManager,
    Store,
    remote_store_io_manager,
)
from dagster_remote_store._core import IoManagerCore
from dagster_remote_store.backends import LocalBackend, MemoryBackend

DAILY = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-06")


class Gone:
    """Stands for a class that was renamed or removed after its objects were stored."""


def pickle_of_gone() -> bytes:
    data = pickle.dumps(Gone(), protocol=5)
    return data.replace(b"Gone", b"Went")


# Each undecodable object, and the exception pickle raises for it.
UNDECODABLE = {
    "truncated": (pickle.dumps({"rows": list(range(100))}, protocol=5)[:30], pickle.UnpicklingError),
    "garbage": (b"\x00 not a pickle at all", pickle.UnpicklingError),
    "empty": (b"", EOFError),
    "class-gone": (pickle_of_gone(), AttributeError),
}


class Evil:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(params=["local", "memory"])
def small_store(request, tmp_path) -> Store:
    backend = LocalBackend(root=str(tmp_path / "store")) if request.param == "local" else MemoryBackend()
    with Store(backend) as store:
        yield store


def load_asset(store: Store, key: list[str], partition: str | None = None, **options):
    manager = remote_store_io_manager(store, **options)
    partitioned = {}
    if partition is not None:
        # dagster 1.9 reads the input's partitions from the range alone.
        partitioned = {
            "partition_key": partition,
            "asset_partition_key_range": PartitionKeyRange(partition, partition),
            "asset_partitions_def": DAILY,
        }
    return manager.load_input(build_input_context(asset_key=AssetKey(key), **partitioned))


def store_asset(store: Store, key: list[str], value) -> None:
    remote_store_io_manager(store).handle_output(build_output_context(asset_key=AssetKey(key)), value)


@pytest.mark.parametrize("kind", sorted(UNDECODABLE))
def test_an_undecodable_pickle_names_asset_partition_and_path(small_store: Store, kind: str) -> None:
    data, original = UNDECODABLE[kind]
    small_store.write("sales/daily/2026-01-02.pkl", data)
    with pytest.raises(DeserializationError) as raised:
        load_asset(small_store, ["sales", "daily"], "2026-01-02")
    message = str(raised.value)
    assert "asset sales/daily partition '2026-01-02'" in message
    assert "sales/daily/2026-01-02.pkl" in message
    assert raised.value.path == "sales/daily/2026-01-02.pkl"
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value.__cause__, original), repr(raised.value.__cause__)


@pytest.mark.parametrize("kind", sorted(UNDECODABLE))
def test_every_pickle_load_api_raises_deserialization_error(small_store: Store, kind: str) -> None:
    data, original = UNDECODABLE[kind]
    small_store.write("bad.pkl", data)
    store_asset(small_store, ["good"], {"fine": True})
    loads = {
        "PickleSerializer.load": lambda: PickleSerializer().load(small_store, "bad.pkl"),
        "PickleSerializer.load_many": lambda: PickleSerializer().load_many(small_store, ["good.pkl", "bad.pkl"]),
        "IoManagerCore.load_input": lambda: IoManagerCore(small_store, "pickle").load_input("bad.pkl"),
    }
    for api, load in loads.items():
        with pytest.raises(DeserializationError) as raised:
            load()
        assert raised.value.path == "bad.pkl", api
        assert '"bad.pkl"' in str(raised.value), api
        assert isinstance(raised.value.__cause__, original), api
    # Bytes alone have no path; the error still says what pickle made of them.
    for api, load in {
        "PickleSerializer.deserialize": lambda: PickleSerializer().deserialize(data),
        "IoManagerCore.load_many": lambda: IoManagerCore(small_store, "pickle").load_many(["bad.pkl"]),
    }.items():
        with pytest.raises(DeserializationError) as raised:
            load()
        assert isinstance(raised.value.__cause__, original), api


def test_a_large_undecodable_pickle_is_named_too(small_store: Store) -> None:
    # Over 8 MiB: streamed into pickle rather than read whole first.
    data = pickle.dumps(np.arange(2_000_000, dtype="float64"), protocol=5)
    small_store.write("big.pkl", data[: len(data) // 2])
    with pytest.raises(DeserializationError) as raised:
        load_asset(small_store, ["big"])
    assert "asset big" in str(raised.value) and raised.value.path == "big.pkl"
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)


@asset(partitions_def=DAILY)
def daily(context) -> int:
    return int(context.partition_key[-1])


@asset(
    partitions_def=DAILY,
    ins={"daily": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-2, end_offset=0))},
)
def rolling(daily: dict[str, int]) -> int:
    return sum(daily.values())


def test_an_undecodable_partition_among_several_is_named(small_store: Store, instance) -> None:
    io = remote_store_io_manager(small_store)
    for day in ["2026-01-03", "2026-01-04", "2026-01-05"]:
        assert materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance).success
    small_store.write("daily/2026-01-04.pkl", b"\x80\x05 truncated")
    result = materialize(
        [daily.to_source_asset(), rolling],
        partition_key="2026-01-05",
        resources={"io_manager": io},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "DeserializationError" in message
    assert "asset daily partition '2026-01-04'" in message and "daily/2026-01-04.pkl" in message


# One value of each kind the "@data" preset covers.
DATA = {
    "builtins": {"a": [1, (2, 3)], "b": {4, 5}, "c": frozenset({6}), "d": bytearray(b"x"), "e": 1 + 2j, "f": range(3)},
    "datetime": [
        datetime.date(2026, 1, 2),
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.datetime(2026, 1, 2, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime.time(1, 2),
        datetime.timedelta(days=1),
    ],
    "decimal": decimal.Decimal("1.10"),
    "collections": [
        collections.OrderedDict(a=1),
        collections.defaultdict(list, a=[1]),
        collections.deque([1, 2]),
        collections.Counter("aab"),
    ],
    "numpy": [np.arange(10), np.zeros((3, 4), dtype="float32"), np.array(["a", "b"]), np.float64(1.5)],
    "pandas": pd.DataFrame(
        {
            "i": [1, 2],
            "s": ["a", "b"],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02"]).tz_localize("Europe/Paris"),
            "c": pd.Categorical(["x", "y"]),
            "n": pd.array([1, None], dtype="Int64"),
        },
        index=pd.date_range("2026-01-01", periods=2, freq="D"),
    ),
    "pandas-series": pd.Series([1.5, 2.5], name="s"),
    "polars": pl.DataFrame({"a": [1, 2], "s": ["x", None]}),
    "pyarrow": pa.table({"a": [1, 2], "s": ["x", None]}),
}


def same(a, b) -> bool:
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return a.equals(b)
    if isinstance(a, (pl.DataFrame, pa.Table)):
        return a.equals(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("kind", sorted(DATA))
def test_common_data_loads_under_the_data_preset(small_store: Store, kind: str) -> None:
    store_asset(small_store, ["value"], DATA[kind])
    assert same(DATA[kind], load_asset(small_store, ["value"], allowed_pickle_globals=["@data"]))


def test_a_large_frame_streams_under_the_allow_list(small_store: Store) -> None:
    frame = pd.DataFrame({"x": np.arange(3_000_000, dtype="float64"), "y": np.arange(3_000_000) % 7})
    store_asset(small_store, ["big"], frame)
    assert small_store.head("big.pkl").size > 8 << 20
    assert load_asset(small_store, ["big"], allowed_pickle_globals=["@data"]).equals(frame)


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_malicious_pickle_is_refused_without_running(small_store: Store, tmp_path: Path, size: str) -> None:
    marker = tmp_path / "pwned"
    # Behind 24 MiB of data, the refused global comes once most of the object was streamed.
    value = [Evil(marker)] if size == "small" else [np.arange(3_000_000, dtype="float64"), Evil(marker)]
    store_asset(small_store, ["shared", "report"], value)
    with pytest.raises(DeserializationError) as raised:
        load_asset(small_store, ["shared", "report"], allowed_pickle_globals=["@data"])
    message = str(raised.value)
    assert "posix.system" in message and "refused" in message
    assert "asset shared/report" in message and "shared/report.pkl" in message
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists(), "the pickle's code ran"
    # The same object loads (and runs) without the allow-list: the test's pickle does what it says.
    load_asset(small_store, ["shared", "report"])
    assert marker.exists()


def test_the_allow_list_through_every_entry_point(small_store: Store, tmp_path: Path, instance) -> None:
    marker = tmp_path / "pwned"
    small_store.write("evil.pkl", pickle.dumps(Evil(marker)))
    restricted = PickleSerializer(allowed_globals=["@data"])
    assert restricted.allowed_globals == ("@data",)
    with pytest.raises(DeserializationError, match=r"posix\.system"):
        restricted.load(small_store, "evil.pkl")
    with pytest.raises(DeserializationError, match=r"posix\.system"):
        restricted.load_many(small_store, ["evil.pkl"])
    with pytest.raises(DeserializationError, match=r"posix\.system"):
        restricted.deserialize(small_store.read_bytes("evil.pkl"))
    with pytest.raises(DeserializationError, match=r"posix\.system"):
        load_asset(small_store, ["evil"], serializer=restricted)
    # The core streams pickles without an allow-list: it refuses one rather than ignore it.
    with pytest.raises(ValueError, match="allowed_globals"):
        IoManagerCore(small_store, restricted)

    @asset
    def evil() -> int:
        return 0

    @asset
    def reader(evil) -> int:
        return 1

    configured = RemoteStoreIOManager(backend_type="local", backend_options={"root": str(tmp_path / "cfg")},
                                      allowed_pickle_globals=["@data"])
    Store(LocalBackend(root=str(tmp_path / "cfg"))).write("evil.pkl", pickle.dumps(Evil(marker)))
    result = materialize([evil.to_source_asset(), reader], resources={"io_manager": configured}, instance=instance,
                         raise_on_error=False)
    assert not result.success
    message = "\n".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "posix.system" in message and "asset evil" in message
    assert not marker.exists()


def global_pickle(module: str, name: str, *args: str) -> bytes:
    """A pickle of the global ``module.name``, called with ``args`` if any are given."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw + pickle.MEMOIZE

    call = (pickle.MARK + b"".join(text(a) for a in args) + pickle.TUPLE + pickle.REDUCE) if args else b""
    return b"\x80\x04" + text(module) + text(name) + pickle.STACK_GLOBAL + call + pickle.STOP


def test_wildcards_allow_what_the_package_defines_and_nothing_it_imports() -> None:
    ours = PickleSerializer(allowed_globals=[f"{__name__}.*"])
    assert ours.deserialize(pickle.dumps(Gone, protocol=5)) is Gone
    # `os` is imported here, so `<this module>.os.system` resolves: to a function of posix, refused.
    with pytest.raises(DeserializationError, match="refused"):
        ours.deserialize(global_pickle(__name__, "os.system", "true"))
    # Attributes are looked up only on allowed classes, and never dunders.
    with pytest.raises(DeserializationError, match="refused"):
        ours.deserialize(global_pickle(__name__, "Gone.__init__.__globals__"))
    data = PickleSerializer(allowed_globals=["@data"])
    with pytest.raises(DeserializationError, match=r"getattr\(collections.OrderedDict, 'fromkeys'\) is refused"):
        data.deserialize(
            b"\x80\x04"
            + global_pickle("builtins", "getattr")[2:-1]
            + global_pickle("collections", "OrderedDict")[2:-1]
            + pickle.SHORT_BINUNICODE + b"\x08fromkeys" + pickle.TUPLE2 + pickle.REDUCE + pickle.STOP
        )
    with pytest.raises(DeserializationError, match="refused"):
        data.deserialize(global_pickle("pandas.io.pickle", "read_pickle", "x.pkl"))


@pytest.mark.parametrize(
    "entries, complaint",
    [("@data", "list of strings"), (["@everything"], "unknown preset"), (["os"], "bad entry"), ([3], "strings")],
)
def test_bad_allow_lists_are_named(entries, complaint: str) -> None:
    with pytest.raises(InvalidConfig, match=complaint):
        PickleSerializer(allowed_globals=entries)


def test_the_allow_list_is_for_pickle_only(small_store: Store) -> None:
    with pytest.raises(InvalidConfig, match="pickle serializer, not 'json'"):
        remote_store_io_manager(small_store, "json", allowed_pickle_globals=["@data"])
    with pytest.raises(InvalidConfig, match="not both"):
        remote_store_io_manager(
            small_store, PickleSerializer(allowed_globals=["@data"]), allowed_pickle_globals=["x.y"]
        )
