"""The IO manager against hand-built Dagster contexts (the design's DAG-001 to DAG-009)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
import re
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DailyPartitionsDefinition,
    IOManager,
    PartitionKeyRange,
    __version__ as dagster_version,
    build_input_context,
    build_output_context,
)

from dagster_remote_store import (
    InvalidPath,
    JsonSerializer,
    NotFound,
    PickleSerializer,
    SerializationError,
    Serializer,
    Store,
    remote_store_io_manager,
)

from conftest import stored

DAILY = DailyPartitionsDefinition(start_date="2026-01-01")


@dataclasses.dataclass
class Order:
    id: int
    items: frozenset


def roundtrip(store: Store, obj: Any, serializer: Any = "pickle", key: list[str] | None = None) -> Any:
    manager = remote_store_io_manager(store, serializer=serializer)
    out = build_output_context(asset_key=AssetKey(key or ["my", "asset"]))
    manager.handle_output(out, obj)
    return manager.load_input(build_input_context(asset_key=AssetKey(key or ["my", "asset"]), upstream_output=out))


@pytest.mark.parametrize(
    "obj", [{"key": "value"}, [1, 2.5, None], Order(7, frozenset({"a", "b"})), None, b"\x00bytes", {1, 2}]
)
def test_dag_001_pickle_roundtrip(store: Store, obj: Any) -> None:
    assert roundtrip(store, obj) == obj
    assert store.exists("my/asset.pkl")


def test_dag_001_pickle_is_the_default_and_readable_by_plain_pickle(store: Store) -> None:
    manager = remote_store_io_manager(store)
    manager.handle_output(build_output_context(asset_key=AssetKey("x")), {"a": 1})
    assert pickle.loads(store.read_bytes("x.pkl")) == {"a": 1}


def test_dag_002_json_roundtrip_writes_plain_json(store: Store) -> None:
    obj = {"rows": [1, 2, 3], "name": "ünïcode ✓", "nested": {"ok": True, "none": None, "f": 1.5}}
    assert roundtrip(store, obj, serializer="json") == obj
    assert json.loads(store.read_bytes("my/asset.json")) == obj
    assert roundtrip(store, (1, "a"), serializer=JsonSerializer()) == [1, "a"]  # tuples become lists, as json does


def test_dag_002_json_rejects_what_json_cannot_hold_naming_the_type(store: Store) -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable") as err:
        roundtrip(store, {"s": {1, 2}}, serializer="json")
    assert isinstance(err.value, SerializationError)
    with pytest.raises(TypeError, match="not JSON compliant"):
        roundtrip(store, float("nan"), serializer="json")
    assert not store.exists("my/asset.json"), "a failed serialization writes nothing"


@pytest.mark.skipif(
    "asset_partitions_def" not in inspect.signature(build_output_context).parameters,
    reason=f"dagster {dagster_version}'s build_output_context takes no asset_partitions_def: "
    "output contexts built by hand are never partitioned there (real runs are: see test_materialize)",
)
def test_dag_004_partitioned_asset_path_includes_the_partition_key(store: Store, instance) -> None:
    manager = remote_store_io_manager(store)
    out = build_output_context(
        asset_key=AssetKey(["foo", "bar"]), partition_key="2026-01-03", asset_partitions_def=DAILY, instance=instance
    )
    manager.handle_output(out, "day three")
    assert stored(store) == ["foo/bar/2026-01-03.pkl"]
    inp = build_input_context(
        asset_key=AssetKey(["foo", "bar"]),
        partition_key="2026-01-03",
        asset_partitions_def=DAILY,
        upstream_output=out,
        instance=instance,
    )
    assert manager.load_input(inp) == "day three"


def test_dag_005_multi_segment_asset_keys_map_to_nested_paths(store: Store) -> None:
    roundtrip(store, 1, key=["foo", "bar"])
    roundtrip(store, 2, key=["ns", "report"])
    roundtrip(store, 3, key=["single"])
    assert stored(store) == ["foo/bar.pkl", "ns/report.pkl", "single.pkl"]


def test_unsafe_key_segments_are_encoded_not_escaping_the_root(store: Store) -> None:
    scoped = store.child("root")
    assert roundtrip(scoped, "x", key=["..", "a/b", ".hidden"]) == "x"
    assert stored(store) == ["root/%2E./a%2Fb/%2Ehidden.pkl"]


def test_dag_007_missing_object_raises_not_found_naming_asset_partition_and_path(store: Store, instance) -> None:
    manager = remote_store_io_manager(store)
    with pytest.raises(NotFound) as err:
        manager.load_input(build_input_context(asset_key=AssetKey(["never", "made"])))
    assert isinstance(err.value, FileNotFoundError)
    assert "asset never/made" in str(err.value) and "'never/made.pkl'" in str(err.value)
    assert err.value.path == "never/made.pkl"

    with pytest.raises(NotFound) as err:
        manager.load_input(
            build_input_context(
                asset_key=AssetKey("daily"),
                partition_key="2026-01-05",
                # dagster 1.9 reads the input's partitions from the range alone.
                asset_partition_key_range=PartitionKeyRange("2026-01-05", "2026-01-05"),
                asset_partitions_def=DAILY,
                instance=instance,
            )
        )
    assert "partition '2026-01-05'" in str(err.value) and "daily/2026-01-05.pkl" in str(err.value)


def test_dag_008_handle_output_adds_path_uri_and_size_metadata(store: Store) -> None:
    manager = remote_store_io_manager(store)
    out = build_output_context(asset_key=AssetKey(["foo", "bar"]))
    manager.handle_output(out, {"k": "v"})
    metadata = out.get_logged_metadata()
    size = store.head("foo/bar.pkl").size
    assert metadata["path"].value == "foo/bar.pkl"
    assert metadata["dagster/uri"].value == store.uri("foo/bar.pkl")
    assert metadata["size_bytes"].value == size > 0


class CsvLines:
    """A custom serializer: one line per item."""

    extension = ".csv"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def serialize(self, obj: list[str]) -> bytes:
        self.calls.append("serialize")
        return "\n".join(obj).encode()

    def deserialize(self, data: bytes) -> list[str]:
        self.calls.append("deserialize")
        return data.decode().split("\n")


def test_dag_009_custom_serializer_protocol_is_respected(store: Store) -> None:
    csv = CsvLines()
    assert isinstance(csv, Serializer)
    assert roundtrip(store, ["a", "b"], serializer=csv) == ["a", "b"]
    assert csv.calls == ["serialize", "deserialize"]
    assert store.read_bytes("my/asset.csv") == b"a\nb"


def test_custom_serializer_errors_surface_as_raised(store: Store) -> None:
    class Failing(CsvLines):
        def serialize(self, obj: Any) -> bytes:
            raise RuntimeError("cannot encode this")

    with pytest.raises(RuntimeError, match="cannot encode this"):
        roundtrip(store, ["x"], serializer=Failing())

    class ReturnsText(CsvLines):
        def serialize(self, obj: Any) -> bytes:
            return "text"  # type: ignore[return-value]

    with pytest.raises(TypeError, match=r"serialize\(\) must return bytes, not str"):
        roundtrip(store, ["x"], serializer=ReturnsText())


def test_serializer_argument_is_checked_up_front(store: Store) -> None:
    with pytest.raises(ValueError, match=r'unknown serializer "xml"; available: bytes, json, parquet, pickle'):
        remote_store_io_manager(store, serializer="xml")

    class NoExtension:
        def serialize(self, obj: Any) -> bytes:
            return b""

        def deserialize(self, data: bytes) -> Any:
            return None

    with pytest.raises(TypeError, match="`extension`"):
        remote_store_io_manager(store, serializer=NoExtension())
    with pytest.raises(TypeError, match=r"dagster_remote_store\.Store"):
        remote_store_io_manager("/data", serializer="pickle")  # type: ignore[arg-type]


def test_bad_extension_is_named(store: Store) -> None:
    class Bad(CsvLines):
        extension = "csv/../x"

    with pytest.raises(InvalidPath, match=re.escape('"csv/../x"')):
        roundtrip(store, ["x"], serializer=Bad())


def test_returns_a_dagster_io_manager_and_leaves_the_store_open(store: Store) -> None:
    manager = remote_store_io_manager(store, serializer=PickleSerializer())
    assert isinstance(manager, IOManager)
    assert "serializer='pickle'" in repr(manager)
    roundtrip(store, 1)
    store.write("still/open", b"yes")  # the manager never closed it
    assert store.read_bytes("still/open") == b"yes"


def test_builtin_serializers_match_the_protocol() -> None:
    for serializer, extension in [(PickleSerializer(), ".pkl"), (JsonSerializer(), ".json")]:
        assert isinstance(serializer, Serializer)
        assert serializer.extension == extension
        assert serializer.deserialize(serializer.serialize({"a": [1]})) == {"a": [1]}
