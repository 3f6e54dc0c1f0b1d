"""What an interrupted write leaves: a writer killed with SIGKILL at random
moments, or one whose Rust code panics, leaves the old value or the new one,
complete and verified, on every backend; never a value that fails to load."""

from __future__ import annotations

import gc
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from dagster import asset, materialize

from dagster_remote_store import InternalError, ParquetSerializer, Store, Unavailable, remote_store_io_manager
from dagster_remote_store._core import IoManagerCore

import crash_writer
from conftest import BACKENDS, make_store

HERE = Path(__file__).parent
# Kills per backend and way of writing; raise it for a longer run.
KILLS = int(os.environ.get("DRS_CRASH_KILLS", "8"))


def load(store: Store, how: str):
    path = crash_writer.path(how)
    if how == "open_writer":
        return pickle.loads(store.read_bytes(path))
    if how == "parquet":
        [table] = IoManagerCore(store, ParquetSerializer()).load_tables([path], into="polars")
        return table
    return IoManagerCore(store, "pickle").load_input(path)


def temporary_files(kind: str, store: Store, tmp_path: Path) -> list[str]:
    """Temporaries on the disk behind a local or SFTP store (the SFTP server runs on this
    machine): local `name#N`, SFTP `.drs-tmp-...`; none to look at for object stores."""
    roots = {"local": tmp_path / "store", "sftp": Path(os.environ.get("DRS_TEST_SFTP_ROOT", "/nonexistent"))}
    if kind not in roots:
        return []
    folder = roots[kind] / store.root_path
    pattern = re.compile(r"^\.drs-tmp-|#\d+$")
    return [str(p) for p in folder.rglob("*") if p.is_file() and pattern.search(p.name)]


def start_writer(kind: str, tmp_path: Path, store: Store, how: str, first_seed: int) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), kind, str(tmp_path), store.root_path, how, str(first_seed)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.mark.parametrize("how", ["pickle", "parquet", "open_writer"])
@pytest.mark.parametrize("kind", [kind for kind in BACKENDS if kind != "memory"])
def test_a_writer_killed_at_any_moment_leaves_a_loadable_value(kind: str, how: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)
    started = time.monotonic()
    crash_writer.write(store, how, 0)
    one_write = time.monotonic() - started
    seeds = {0}
    rng = np.random.default_rng(sum(map(ord, kind + how)))
    mid_write = 0
    for kill in range(KILLS):
        first_seed = 1000 * (kill + 1)
        child = start_writer(kind, tmp_path, store, how, first_seed)
        # Anywhere in the first few writes: the start, the middle, the publish.
        time.sleep(rng.uniform(0, 2.5 * one_write))
        child.kill()
        child.wait()
        lines = child.stdout.read().split()
        child.stdout.close()
        seeds |= {int(seed) for word, seed in zip(lines[::2], lines[1::2]) if word == "start"}
        mid_write += lines[-2:-1] == ["start"]
        loaded = crash_writer.check(how, load(store, how))
        assert loaded in seeds, f"seed {loaded} was never written"
    # What the killed writers left (incomplete uploads, temporary files) goes with one call.
    left = store.leftovers()
    assert set(store.clean_up(older_than=0)) == set(left)
    assert store.leftovers() == []
    assert temporary_files(kind, store, tmp_path) == [], "the files themselves are gone"
    print(f"{kind} {how}: {KILLS} kills, {mid_write} during a write, {len(left)} leftovers removed")


def test_a_panic_in_a_write_is_an_exception_and_stores_nothing(store: Store, monkeypatch) -> None:
    core = IoManagerCore(store, "pickle")
    old = {"x": np.arange(2_000_000)}  # 16 MB: streamed, so the panic comes after parts went out
    core.handle_output("p.pkl", old)
    monkeypatch.setenv("DAGSTER_REMOTE_STORE_TEST_PANIC", "p.pkl")
    with pytest.raises(InternalError) as raised:
        core.handle_output("p.pkl", {"x": np.arange(2_000_000) + 1})
    assert isinstance(raised.value, Exception), "caught by `except Exception`"
    assert (raised.value.path, raised.value.operation) == ("p.pkl", "handle_output")
    assert "handle_output 'p.pkl'" in str(raised.value).replace('"', "'")
    monkeypatch.delenv("DAGSTER_REMOTE_STORE_TEST_PANIC")
    assert np.array_equal(core.load_input("p.pkl")["x"], old["x"]), "the old value, verified"


def test_a_panic_in_an_asset_write_fails_the_step_and_keeps_the_old_value(
    store: Store, instance, monkeypatch
) -> None:
    @asset
    def numbers() -> dict:
        return {"x": np.arange(2_000_000) + int(os.environ.get("OFFSET", "0"))}

    io = remote_store_io_manager(store)
    assert materialize([numbers], resources={"io_manager": io}, instance=instance).success
    monkeypatch.setenv("OFFSET", "1")
    monkeypatch.setenv("DAGSTER_REMOTE_STORE_TEST_PANIC", "numbers.pkl")
    result = materialize([numbers], resources={"io_manager": io}, instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    error = failure.event_specific_data.error
    assert "InternalError" in error.cls_name or "InternalError" in str(error), error
    monkeypatch.delenv("DAGSTER_REMOTE_STORE_TEST_PANIC")
    assert IoManagerCore(store, "pickle").load_input("numbers.pkl")["x"][0] == 0


def test_a_stream_writer_dropped_without_close_stores_nothing(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_REMOTE_STORE_TEST_PANIC", "w.bin")
    writer = store.open_writer("w.bin")
    with pytest.raises(InternalError):
        writer.write(b"x" * (9 << 20))
    del writer
    gc.collect()
    never_closed = store.open_writer("never-closed.bin")
    never_closed.write(b"y" * (9 << 20))
    del never_closed
    gc.collect()
    time.sleep(0.5)  # the uploads end on the runtime, after the writers are gone
    assert not store.exists("w.bin")
    assert not store.exists("never-closed.bin")


@pytest.mark.parametrize("kind", ["numpy", "pandas", "bytearray"])
def test_pickle_protocol_5_writes_into_a_stream_writer(store: Store, kind: str) -> None:
    import pandas as pd

    value = {
        "numpy": np.arange(3_000_000, dtype=np.float64),
        "pandas": pd.DataFrame({"a": np.arange(1_500_000), "b": np.linspace(0, 1, 1_500_000)}),
        "bytearray": bytearray(b"z" * (9 << 20)),
    }[kind]
    with store.open_writer("v.pkl") as writer:
        pickle.dump(value, writer, protocol=5)
    loaded = pickle.loads(store.read_bytes("v.pkl"))
    if kind == "pandas":
        pd.testing.assert_frame_equal(loaded, value)
    elif kind == "numpy":
        assert np.array_equal(loaded, value)
    else:
        assert loaded == value


@pytest.mark.parametrize("how", ["pickle", "parquet"])
def test_writers_racing_on_one_asset_leave_it_loadable(store: Store, how: str) -> None:
    """Large values (streamed, their checksum recorded beside them) written to one
    asset by several writers at once: whichever wins loads, verified. On Azure a
    commit discards the blocks other writers have not committed yet, so a losing
    writer may fail, as `Unavailable`; it never leaves the asset unloadable."""
    from concurrent.futures import ThreadPoolExecutor

    def write(seed: int):
        try:
            crash_writer.write(store, how, seed)
        except Unavailable as lost:
            return lost
        return None

    with ThreadPoolExecutor(3) as pool:
        for round_ in range(3):
            batch = [10 * round_ + writer for writer in range(3)]
            lost = list(pool.map(write, batch))
            assert any(failure is None for failure in lost), lost
            won = [seed for seed, failure in zip(batch, lost) if failure is None]
            assert crash_writer.check(how, load(store, how)) in won
