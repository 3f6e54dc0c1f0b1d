"""Writes one asset over and over until it is killed: the child process of
test_crash.py, which kills it with SIGKILL at random moments.

    python crash_writer.py KIND TMP_PATH ROOT_PATH HOW FIRST_SEED

prints `ready` once set up, then `start SEED` and `done SEED` around each write.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import polars as pl
from dagster import build_output_context

from dagster_remote_store import Store, remote_store_io_manager

from conftest import make_backend

# Larger than one request (8 MiB): streamed as a multipart upload, its checksum recorded beside it.
BLOB = 12 << 20
ROWS = 1_600_000
ASSET = "crash"


def value(how: str, seed: int):
    """A value that says which seed made it, and can be checked against it."""
    rng = np.random.default_rng(seed)
    if how == "parquet":
        return pl.DataFrame({"seed": pl.repeat(seed, ROWS, eager=True), "x": rng.random(ROWS)})
    return {"seed": seed, "blob": rng.bytes(BLOB)}


def check(how: str, loaded) -> int:
    """The seed of a loaded value, after checking it is exactly the value of that seed."""
    if how == "parquet":
        seed = loaded["seed"][0]
        assert loaded.equals(value(how, seed)), f"a table that no writer wrote (seed {seed})"
        return seed
    seed = loaded["seed"]
    assert loaded["blob"] == value(how, seed)["blob"], f"a value that no writer wrote (seed {seed})"
    return seed


def path(how: str) -> str:
    return {"pickle": f"{ASSET}.pkl", "parquet": f"{ASSET}.parquet", "open_writer": f"{ASSET}.bin"}[how]


def write(store: Store, how: str, seed: int) -> None:
    if how == "open_writer":
        with store.open_writer(path(how)) as writer:
            pickle.dump(value(how, seed), writer, protocol=5)
        return
    io = remote_store_io_manager(store, serializer="parquet" if how == "parquet" else "pickle")
    io.handle_output(build_output_context(asset_key=ASSET), value(how, seed))


def main() -> None:
    kind, tmp_path, root_path, how, first_seed = sys.argv[1:]
    store = Store(make_backend(kind, Path(tmp_path)), root_path=root_path)
    print("ready", flush=True)
    seed = int(first_seed)
    while True:
        print(f"start {seed}", flush=True)
        write(store, how, seed)
        print(f"done {seed}", flush=True)
        seed += 1


if __name__ == "__main__":
    main()
