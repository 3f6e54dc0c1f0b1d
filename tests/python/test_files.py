"""Files and streams through the IO manager: paths, folders, file objects and iterators of
bytes streamed in; inputs read lazily as seekable files (zipfile and pyarrow fetching only
what they read) or copied to local paths; every byte verified, and a failed stream leaving
the old object. On every backend, against its real server."""

from __future__ import annotations

import io
import os
import typing
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetIn, Output, asset, materialize

from dagster_remote_store import ChecksumMismatch, ObjectFile, Store, remote_store_io_manager

from conftest import make_store

MiB = 1 << 20


def blob(size: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed) % 251 for i in range(256)) * (size // 256) + os.urandom(size % 256)


def test_a_path_streams_in_and_loads_as_a_lazy_file_and_as_a_local_copy(store: Store, instance, tmp_path) -> None:
    data = os.urandom(12 * MiB + 5)  # beyond one write: streamed, with block checksums
    (tmp_path / "model.onnx").write_bytes(data)

    @asset
    def model() -> Path:
        return tmp_path / "model.onnx"

    @asset
    def middle(model: io.BufferedReader) -> bytes:
        assert isinstance(model, ObjectFile) and model.size == len(data)
        model.seek(7 * MiB + 3)
        piece = model.read(100)
        assert model.fetched <= 2 * MiB, "one block, and one ahead at most"
        return piece

    @asset
    def copied(model: Path) -> bytes:
        assert model.name == "model" and model.exists()
        return model.read_bytes()

    result = materialize(
        [model, middle, copied], resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.output_for_node("middle") == data[7 * MiB + 3 : 7 * MiB + 103]
    assert result.output_for_node("copied") == data
    [record] = instance.fetch_materializations(model.key, limit=1).records
    metadata = record.asset_materialization.metadata
    assert metadata["size_bytes"].value == len(data)
    assert metadata["content_type"].value == "application/onnx"


def test_file_objects_and_iterators_stream_in(store: Store, instance) -> None:
    chunks = [blob(3 * MiB, seed) for seed in range(4)]

    @asset
    def from_file() -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(b"".join(chunks)))  # type: ignore[arg-type]

    @asset
    def from_chunks() -> Output:
        return Output(iter(chunks))

    @asset(ins={"from_file": AssetIn(), "from_chunks": AssetIn()})
    def both(from_file: typing.BinaryIO, from_chunks: typing.BinaryIO) -> bool:
        return from_file.read() == from_chunks.read() == b"".join(chunks)

    result = materialize(
        [from_file, from_chunks, both], resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.output_for_node("both") is True


def test_a_stream_that_fails_leaves_the_old_object(store: Store, instance) -> None:
    fail = {"now": False}

    def chunks():
        yield blob(5 * MiB)
        yield blob(5 * MiB, 1)
        if fail["now"]:
            raise ConnectionError("the source went away")
        yield b"end"

    @asset
    def export() -> Output:
        return Output(chunks())

    resources = {"io_manager": remote_store_io_manager(store, "bytes")}
    assert materialize([export], resources=resources, instance=instance).success
    fail["now"] = True
    with pytest.raises(ConnectionError):
        materialize([export], resources=resources, instance=instance)
    old = blob(5 * MiB) + blob(5 * MiB, 1) + b"end"
    assert remote_store_io_manager(store, "bytes").core.load_input("export") == old


def test_a_folder_round_trips_as_a_path(tmp_path, instance) -> None:
    store = make_store("local", tmp_path / "store")
    source = tmp_path / "report"
    (source / "charts").mkdir(parents=True)
    (source / "index.html").write_text("<h1>report</h1>")
    (source / "charts" / "a.png").write_bytes(blob(2 * MiB))

    @asset
    def report() -> Path:
        return source

    @asset
    def published(report: Path) -> dict:
        return {str(p.relative_to(report)): p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}

    result = materialize(
        [report, published], resources={"io_manager": remote_store_io_manager(store)}, instance=instance
    )
    assert result.output_for_node("published") == {
        "charts/a.png": (source / "charts" / "a.png").read_bytes(),
        "index.html": b"<h1>report</h1>",
    }
    [record] = instance.fetch_materializations(report.key, limit=1).records
    assert record.asset_materialization.metadata["content_type"].value == "application/x-tar"


def test_zipfile_and_pyarrow_read_only_what_they_need(tmp_path, instance) -> None:
    store = make_store("local", tmp_path / "store")
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        for n in range(30):
            bundle.writestr(f"part{n}.bin", blob(MiB, n))
    # A small column and a large one (16 MiB), in one row group.
    table = pa.table({"small": pa.array(range(2000)), "large": pa.array([os.urandom(8 * 1024) for _ in range(2000)])})
    pq.write_table(table, tmp_path / "table.parquet", compression="none")

    @asset
    def bundle() -> Path:
        return archive

    @asset
    def table_file() -> Path:
        return tmp_path / "table.parquet"

    @asset
    def one_member(bundle: typing.BinaryIO) -> tuple[bytes, int]:
        with zipfile.ZipFile(bundle) as opened:
            return opened.read("part17.bin"), bundle.fetched  # type: ignore[attr-defined]

    @asset
    def one_column(table_file: typing.BinaryIO) -> tuple[list, int]:
        column = pq.ParquetFile(table_file).read(columns=["small"]).column("small").to_pylist()
        return column, table_file.fetched  # type: ignore[attr-defined]

    io_manager = remote_store_io_manager(store)
    result = materialize(
        [bundle, table_file, one_member, one_column], resources={"io_manager": io_manager}, instance=instance
    )
    member, fetched = result.output_for_node("one_member")
    assert member == blob(MiB, 17)
    assert fetched <= 4 * MiB, f"{fetched} of {archive.stat().st_size} bytes fetched"
    column, fetched = result.output_for_node("one_column")
    assert column == list(range(2000))
    assert fetched <= 5 * MiB, f"{fetched} of {(tmp_path / 'table.parquet').stat().st_size} bytes fetched"


def test_a_changed_block_fails_the_read_and_leaves_no_copy(tmp_path) -> None:
    store = make_store("local", tmp_path / "store")
    io_manager = remote_store_io_manager(store, "bytes")
    core = io_manager.core
    data = blob(12 * MiB)
    writer = core.open_output("blob")
    writer.write(data)
    writer.close()
    stored = next(p for p in (tmp_path / "store").rglob("blob") if p.is_file())
    changed = bytearray(stored.read_bytes())
    changed[9 * MiB + 1] ^= 0xFF
    # Bytes changed behind the IO manager's back (the recorded checksums kept).
    with stored.open("r+b") as file:
        file.write(bytes(changed))
    reader = ObjectFile(core.open_ranged("blob"))
    assert reader.read(10) == data[:10]
    reader.seek(9 * MiB)
    with pytest.raises(ChecksumMismatch):
        reader.read(10)
    local = tmp_path / "copy"
    with pytest.raises(ChecksumMismatch):
        core.download("blob", str(local))
    assert not local.exists() and not Path(f"{local}.part").exists()


def test_the_bytes_serializer_stores_bytes_as_they_are(store: Store, instance) -> None:
    @asset
    def raw() -> bytes:
        return b"\x00\x01 as is"

    @asset
    def back(raw: bytes) -> bytes:
        return raw

    result = materialize(
        [raw, back], resources={"io_manager": remote_store_io_manager(store, "bytes")}, instance=instance
    )
    assert result.output_for_node("back") == b"\x00\x01 as is"
    assert store.read_bytes("raw") == b"\x00\x01 as is"
