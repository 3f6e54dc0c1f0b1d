"""The Store API from Python, on every backend."""

from __future__ import annotations

import datetime
import sys
import threading
import time

import pytest

from dagster_remote_store import (
    AlreadyExists,
    InvalidConfig,
    InvalidPath,
    NotFound,
    RemoteStoreError,
    Store,
)
from dagster_remote_store.backends import Backend, LocalBackend, MemoryBackend, S3Backend, SFTPBackend


def test_write_read_overwrite(store: Store) -> None:
    store.write("a/b.bin", b"one")
    assert store.read_bytes("a/b.bin") == b"one"
    store.write("a/b.bin", bytearray(b"two"))
    assert store.read_bytes("a/b.bin") == b"two"
    assert store.read_range("a/b.bin", 1, 3) == b"wo"


def test_create_only(store: Store) -> None:
    store.write("once", b"1", overwrite=False)
    with pytest.raises(AlreadyExists) as err:
        store.write("once", b"2", overwrite=False)
    assert isinstance(err.value, FileExistsError)
    assert err.value.path == "once"
    assert store.read_bytes("once") == b"1"


def test_missing_object_is_file_not_found_naming_path_operation_backend(store: Store) -> None:
    with pytest.raises(FileNotFoundError) as err:
        store.read_bytes("no/such.pkl")
    assert isinstance(err.value, NotFound) and isinstance(err.value, RemoteStoreError)
    assert (err.value.path, err.value.operation, err.value.backend) == ("no/such.pkl", "read", store.backend.kind)
    assert '"no/such.pkl"' in str(err.value)


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../b", "a//b", "a\\b", "nul\0", "dot/./x"])
def test_invalid_paths_are_value_errors_quoting_the_path(store: Store, bad: str) -> None:
    with pytest.raises(ValueError) as err:
        store.write(bad, b"x")
    assert isinstance(err.value, InvalidPath)
    assert err.value.path == bad
    assert "invalid path" in str(err.value)


def test_head_exists_delete(store: Store) -> None:
    store.write("h.txt", b"12345")
    info = store.head("h.txt")
    assert (info.path, info.size) == ("h.txt", 5)
    assert isinstance(info.last_modified, datetime.datetime) and info.last_modified.tzinfo is not None
    assert store.exists("h.txt")
    store.delete("h.txt")
    assert not store.exists("h.txt")
    with pytest.raises(NotFound):
        store.delete("h.txt")
    store.delete("h.txt", missing_ok=True)


def test_list_recursive_and_one_level(store: Store) -> None:
    for path in ["x/1.pkl", "x/2/3.pkl", "xy/4.pkl", "top.pkl"]:
        store.write(path, b"")
    assert store.list() == ["top.pkl", "x/1.pkl", "x/2/3.pkl", "xy/4.pkl"]
    assert store.list("x") == ["x/1.pkl", "x/2/3.pkl"]
    assert store.list("x/", recursive=False) == ["x/1.pkl", "x/2/"]
    assert store.list(recursive=False) == ["top.pkl", "x/", "xy/"]


def test_copy_and_rename(store: Store) -> None:
    store.write("src", b"data")
    store.copy("src", "dst")
    assert store.read_bytes("dst") == b"data"
    with pytest.raises(AlreadyExists):
        store.copy("src", "dst", overwrite=False)
    store.rename("dst", "moved/dst")
    assert not store.exists("dst") and store.read_bytes("moved/dst") == b"data"


def test_root_path_and_child_scope_every_path(store: Store) -> None:
    scoped = Store(store.backend, root_path=f"{store.root_path}/team/a/")
    assert scoped.root_path == f"{store.root_path}/team/a"
    scoped.write("obj", b"1")
    assert store.read_bytes("team/a/obj") == b"1"
    assert scoped.list() == ["obj"]
    child = store.child("team")
    assert child.list() == ["a/obj"]
    assert child.uri("a/obj").endswith("team/a/obj")


def test_unicode_names(store: Store) -> None:
    store.write("ünï/cödé ✓.json", b"{}")
    assert store.list("ünï") == ["ünï/cödé ✓.json"]


def test_uri_schemes(tmp_path) -> None:
    local = Store(LocalBackend(root=str(tmp_path)))
    assert local.uri("a b/c.pkl") == f"file://{tmp_path.resolve()}/a%20b/c.pkl"
    assert Store(MemoryBackend()).uri("c.pkl") == "memory:///c.pkl"


def test_local_writes_land_as_files_and_leave_no_temporaries(tmp_path) -> None:
    store = Store(LocalBackend(root=str(tmp_path), fsync=True))
    store.write("d/e.bin", b"x" * 1000)
    assert (tmp_path / "d" / "e.bin").read_bytes() == b"x" * 1000
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["e.bin"]


def test_memory_backends_are_separate_spaces() -> None:
    a, b = Store(MemoryBackend()), Store(MemoryBackend())
    a.write("k", b"1")
    assert not b.exists("k")


def test_store_rejects_what_is_not_a_backend() -> None:
    with pytest.raises(TypeError, match="LocalBackend"):
        Store("/data/dagster")  # type: ignore[arg-type]
    assert isinstance(LocalBackend, type) and issubclass(MemoryBackend, Backend)


def test_backend_constructors_check_their_arguments_as_a_signature_would(tmp_path) -> None:
    unknown = r'S3Backend\(\) got an unexpected keyword argument "buckt"; accepted: bucket, endpoint_url, '
    with pytest.raises(TypeError, match=unknown):
        S3Backend(buckt="data")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r'S3Backend\(\) argument "allow_http" must be bool, not str'):
        S3Backend("data", allow_http="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r'S3Backend\(\) argument "max_retries" must be int, not bool'):
        S3Backend("data", max_retries=True)
    with pytest.raises(TypeError, match=r'S3Backend\(\) missing required argument "bucket"'):
        S3Backend()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"S3Backend\(\) takes 1 positional argument but 2 were given"):
        S3Backend("data", "eu-west-1")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r'S3Backend\(\) got multiple values for argument "bucket"'):
        S3Backend("data", bucket="other")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r'SFTPBackend\(\) missing required argument "username"'):
        SFTPBackend("host", base_path="/srv", password="pw")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r'got an unexpected keyword argument "pkey"'):
        SFTPBackend("host", username="u", base_path="/srv", pkey="key")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'root'"):
        MemoryBackend(root="x")  # type: ignore[call-arg]
    # Paths as os.PathLike, numbers of seconds as int or float, and None for "left out".
    assert LocalBackend(tmp_path, fsync=None).root == tmp_path  # type: ignore[arg-type]
    assert repr(S3Backend("data", region_name=None, timeout=30, read_timeout=2.5)) == 'S3Backend(bucket="data")'
    with pytest.raises(InvalidConfig, match="timeout must be a positive number of seconds, got 0"):
        S3Backend("data", timeout=0)


def test_reprs_name_backend_and_root(tmp_path) -> None:
    store = Store(LocalBackend(root=str(tmp_path)), root_path="r")
    assert repr(store) == f'Store(LocalBackend(root="{tmp_path}", fsync=False), root_path="r")'


def test_io_releases_the_gil(tmp_path) -> None:
    """Another thread runs while this one writes and reads 64 MiB on disk.

    With a huge switch interval the interpreter never preempts: the counting
    thread only gets the GIL when the I/O thread gives it up, which it does
    only if the Rust side releases it while waiting on storage.
    """
    store = Store(LocalBackend(root=str(tmp_path)))
    payload = b"\x01" * (64 << 20)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.0002)  # blocks, so hands the GIL back at once

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    counter = threading.Thread(target=count)
    try:
        counter.start()
        before = ticks
        for _ in range(3):
            store.write("big.bin", payload)
            assert len(store.read_bytes("big.bin")) == len(payload)
        during = ticks - before
    finally:
        done.set()
        counter.join()
        sys.setswitchinterval(interval)
    assert during >= 10, f"the other thread ran only {during} times during the I/O: the GIL was held"


def test_streamed_writes_and_reads(store: Store) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with store.open_writer("big/streamed.bin") as writer:
        for i in range(20):
            assert writer.write(chunk[i:] + chunk[:i]) == len(chunk)
        assert not store.exists("big/streamed.bin"), "nothing is visible before close"
    assert writer.closed
    assert store.head("big/streamed.bin").size == 20 * len(chunk)
    with store.open_reader("big/streamed.bin") as reader:
        assert reader.read(10) == chunk[:10]
        rest = reader.read()
    assert len(rest) == 20 * len(chunk) - 10 and rest[len(chunk) - 10 :][:5] == chunk[1:6]
    assert sum(len(piece) for piece in store.open_reader("big/streamed.bin")) == 20 * len(chunk)
    with store.open_reader("big/streamed.bin") as reader:
        assert reader.read(3) == chunk[:3]
        buffer = bytearray(len(chunk) + 5)  # spans chunk boundaries wherever they fall
        assert reader.readinto(buffer) == len(buffer)
        assert bytes(buffer) == (chunk + chunk[1:] + chunk[:1])[3 : 3 + len(buffer)]
        assert reader.readinto(memoryview(bytearray(1 << 30))) == 20 * len(chunk) - 3 - len(buffer)
        assert reader.readinto(bytearray(8)) == 0, "nothing left"


def test_readinto_fills_any_writable_buffer_and_refuses_read_only_ones(store: Store) -> None:
    import array

    store.write("r/eight.bin", bytes(range(1, 33)))
    with store.open_reader("r/eight.bin") as reader:
        with pytest.raises(TypeError, match="writable"):
            reader.readinto(b"\0" * 8)
        doubles = array.array("d", [0.0] * 2)  # items of 8 bytes are filled as bytes
        assert reader.readinto(doubles) == 16
        assert doubles.tobytes() == bytes(range(1, 17))
        assert reader.read() == bytes(range(17, 33)), "the refused call consumed nothing"


def test_readinto_a_large_buffer_leaves_the_bytes_around_it_alone(store: Store) -> None:
    # Large buffers are advised onto huge pages before they are filled; the
    # advice covers whole pages inside the buffer and never changes contents.
    data = bytes(range(251)) * (6 * 4096)  # about 6 MiB, not a multiple of the page size
    with store.open_writer("r/large.bin") as writer:
        writer.write(data)
    memory = bytearray(b"\xaa" * (len(data) + 3 * 4096))
    with store.open_reader("r/large.bin") as reader:
        assert reader.readinto(memoryview(memory)[4097 : 4097 + len(data)]) == len(data)
    assert memory[4097 : 4097 + len(data)] == data
    assert memory[:4097] == b"\xaa" * 4097
    assert memory[4097 + len(data) :] == b"\xaa" * (len(memory) - 4097 - len(data))


def test_pickle_streams_through_writer_and_reader(store: Store) -> None:
    import pickle

    value = {"rows": list(range(50_000)), "name": "ünïcode"}
    with store.open_writer("pickled.pkl") as writer:
        pickle.dump(value, writer, protocol=pickle.HIGHEST_PROTOCOL)
    with store.open_reader("pickled.pkl") as reader:
        assert pickle.load(reader) == value


def test_an_exception_inside_the_writer_stores_nothing(store: Store) -> None:
    store.write("kept.bin", b"old")
    with pytest.raises(RuntimeError, match="producer failed"), store.open_writer("kept.bin") as writer:
        writer.write(b"x" * (9 << 20))
        raise RuntimeError("producer failed")
    assert store.read_bytes("kept.bin") == b"old"
    assert store.list() == ["kept.bin"]
    with pytest.raises(ValueError, match="closed file"):
        writer.write(b"more")


def test_create_only_writer_and_missing_reader(store: Store) -> None:
    store.write("taken.bin", b"1")
    writer = store.open_writer("taken.bin", overwrite=False)
    writer.write(b"2")
    with pytest.raises(AlreadyExists):
        writer.close()
    assert store.read_bytes("taken.bin") == b"1"
    with pytest.raises(NotFound):
        store.open_reader("absent.bin")
    lines = store.open_writer("lines.txt")
    lines.write(b"one\ntwo\nthree")
    lines.close()
    reader = store.open_reader("lines.txt")
    read = [reader.readline(), reader.readline(), reader.readline(), reader.readline()]
    assert read == [b"one\n", b"two\n", b"three", b""]
