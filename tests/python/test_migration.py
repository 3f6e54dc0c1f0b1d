"""Teams on remote-store's Dagster extension switch by changing imports."""

from __future__ import annotations

from typing import Optional

import pytest
from dagster import AssetIn, DailyPartitionsDefinition, __version__ as dagster_version, asset, materialize

import dagster_remote_store as ours
from dagster_remote_store._core import foreign_store

theirs = pytest.importorskip(
    "remote_store.ext.dagster",
    reason=f"remote-store is not installed with dagster {dagster_version}: the oldest-dependencies venv leaves "
    "it out, as remote-store 0.33's Dagster extension imports what dagster 1.9 does not have",
)
import remote_store  # noqa: E402
from remote_store.backends import LocalBackend as TheirLocalBackend  # noqa: E402

NAMES = [
    "dagster_io_manager",
    "PickleSerializer",
    "JsonSerializer",
    "ParquetSerializer",
    "Serializer",
    "DagsterStoreResource",
    "RemoteStoreIOManager",
]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_remote_store_exports_exists_here(name) -> None:
    assert name in theirs.__all__, "the name is remote-store's"
    assert name in ours.__all__ and getattr(ours, name) is not None


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


def test_the_same_calls_work(tmp_path, instance) -> None:
    # The call shapes from remote-store's documentation, with only the import changed.
    for module in (theirs, ours):
        options = {"root": str(tmp_path / module.__name__)}
        resource = module.DagsterStoreResource(backend_type="local", backend_options=options)
        io = module.RemoteStoreIOManager(backend_type="local", backend_options=options, serializer="json")
        assert materialize([numbers, total], resources={"io_manager": io, "store": resource}, instance=instance).success
        for serializer in (module.PickleSerializer(), module.JsonSerializer()):
            assert isinstance(serializer, module.Serializer)
            assert serializer.deserialize(serializer.serialize([1, "a"])) == [1, "a"]
        assert module.ParquetSerializer().extension == ".parquet"
    ours_stored = (tmp_path / "dagster_remote_store" / "total.json").read_bytes()
    assert ours_stored == (tmp_path / "remote_store.ext.dagster" / "total.json").read_bytes()


def test_a_remote_store_store_works_as_a_foreign_store(tmp_path, instance) -> None:
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")

    @asset(partitions_def=days)
    def daily(context) -> str:
        return context.partition_key

    @asset(ins={"daily": AssetIn()})
    def every_day(daily: dict[str, str]) -> list[str]:
        return sorted(daily)

    @asset
    def maybe(never_stored: Optional[int]) -> str:
        return "absent" if never_stored is None else "present"

    @asset
    def never_stored() -> int:
        return 1

    their_store = remote_store.Store(TheirLocalBackend(root=str(tmp_path)))
    io = ours.dagster_io_manager(their_store, serializer="pickle")
    for day in days.get_partition_keys():
        assert materialize([daily], partition_key=day, resources={"io_manager": io}, instance=instance).success
    result = materialize([daily.to_source_asset(), every_day], resources={"io_manager": io}, instance=instance)
    assert result.success and result.output_for_node("every_day") == days.get_partition_keys()
    assert (tmp_path / "daily" / "2026-01-02.pkl").is_file(), "the same layout as on our own stores"
    result = materialize([never_stored.to_source_asset(), maybe], resources={"io_manager": io}, instance=instance)
    assert result.output_for_node("maybe") == "absent", "remote-store's NotFound is a missing object"

    # The checksum travels beside each object there too, and is verified.
    (tmp_path / "daily" / "2026-01-02.pkl").write_bytes(b"corrupt")
    failed = materialize(
        [daily.to_source_asset(), every_day], resources={"io_manager": io}, instance=instance, raise_on_error=False
    )
    assert not failed.success


def test_anything_else_is_refused_naming_what_it_lacks() -> None:
    with pytest.raises(TypeError, match="has no `write`"):
        ours.remote_store_io_manager(type("OnlyReads", (), {"read_bytes": lambda self, path: b""})())
    reads_and_writes = {"read_bytes": lambda self, path: b"", "write": lambda self, path, data, overwrite=True: None}
    with pytest.raises(TypeError, match="has no `get_file_info`"):
        ours.remote_store_io_manager(type("NoInfo", (), reads_and_writes)())


def test_a_remote_store_store_serves_every_store_operation(tmp_path) -> None:
    store = foreign_store(remote_store.Store(TheirLocalBackend(root=str(tmp_path))))
    store.write("a/one.txt", b"1")
    store.write("a/b/two.txt", b"22")
    assert store.head("a/b/two.txt").size == 2 and store.head("a/b/two.txt").last_modified is not None
    assert store.exists("a/one.txt") and not store.exists("a/none.txt")
    assert sorted(store.list("a", recursive=True)) == ["a/b/two.txt", "a/one.txt"]
    assert sorted(store.list("a", recursive=False)) == ["a/b/", "a/one.txt"]
    store.copy("a/one.txt", "c/one.txt")
    store.rename("a/b/two.txt", "c/two.txt")
    assert store.read_bytes("c/one.txt") == b"1" and store.read_bytes("c/two.txt") == b"22"
    store.delete("a/one.txt")
    store.delete("a/one.txt", missing_ok=True)
    assert sorted(store.list("", recursive=True)) == ["c/one.txt", "c/two.txt"]
