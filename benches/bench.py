"""Benchmarks the IO manager side by side with the ones Dagster users have today.

Run by `cargo xtask bench`, which builds the wheel in release mode into a bench
venv with the comparison implementations, starts an S3 server (s3s-fs) and a
proxy in front of it that adds network latency, and passes their addresses in
BENCH_* variables. Every case (workload x storage x implementation) runs in
processes of its own, so peak memory is the case's own; the rounds of small and
large cases take turns with the other implementations' rounds. Contexts are built
before timing: building them is Dagster's cost, not the IO manager's.

Writes results.json (raw), results.md (medians and ratios) and chart.png to --out.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

MIB = 1 << 20
OURS = "dagster-remote-store"
IMPLEMENTATIONS = {
    # storage -> the implementations that run on it, ours first
    "local": [OURS, "dagster FilesystemIOManager", "remote-store 0.33"],
    "s3": [OURS, "dagster-aws S3PickleIOManager", "remote-store 0.33"],
    "s3+latency": [OURS, "dagster-aws S3PickleIOManager", "remote-store 0.33"],
}


# --- sizes ----------------------------------------------------------------------------------------


class Sizes:
    def __init__(self, quick: bool) -> None:
        self.small_assets = 100 if quick else 500
        self.partitions = 60 if quick else 365
        self.large_mib = 32 if quick else 256
        self.rounds = 3 if quick else 5
        self.large_rounds = 2 if quick else 5


# --- storage and IO managers -------------------------------------------------------------------


def s3_env(latency: bool) -> dict[str, str]:
    env = os.environ
    return {
        "endpoint": env["BENCH_S3_LATENCY_ENDPOINT" if latency else "BENCH_S3_ENDPOINT"],
        "bucket": env["BENCH_S3_BUCKET"],
        "key": env["BENCH_S3_KEY"],
        "secret": env["BENCH_S3_SECRET"],
        "region": env.get("BENCH_S3_REGION", "us-east-1"),
    }


def io_manager(implementation: str, storage: str, root: str, serializer: str = "pickle"):
    """The IO manager under test, on `storage`, every object under `root`."""
    if storage == "local":
        if implementation == OURS:
            from dagster_remote_store import Store, remote_store_io_manager
            from dagster_remote_store.backends import LocalBackend

            return remote_store_io_manager(Store(LocalBackend(root=root)), serializer)
        if implementation == "dagster FilesystemIOManager":
            from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

            return PickledObjectFilesystemIOManager(base_dir=root)
        if implementation == "remote-store 0.33":
            import remote_store
            from remote_store.backends import LocalBackend
            from remote_store.ext.dagster import ParquetSerializer, dagster_io_manager

            store = remote_store.Store(LocalBackend(root=root))
            return dagster_io_manager(store, serializer=ParquetSerializer() if serializer == "parquet" else serializer)
    s3 = s3_env(latency=storage == "s3+latency")
    if implementation == OURS:
        from dagster_remote_store import remote_store_io_manager

        return remote_store_io_manager(our_s3_store(s3, root), serializer)
    if implementation == "dagster-aws S3PickleIOManager":
        import boto3
        from dagster_aws.s3 import PickledObjectS3IOManager

        client = boto3.client(
            "s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["key"], aws_secret_access_key=s3["secret"],
            region_name=s3["region"],
        )
        return PickledObjectS3IOManager(s3["bucket"], client, s3_prefix=root)
    if implementation == "remote-store 0.33":
        import remote_store
        from remote_store.backends import S3Backend
        from remote_store.ext.dagster import ParquetSerializer, dagster_io_manager

        backend = S3Backend(
            s3["bucket"], endpoint_url=s3["endpoint"], key=s3["key"], secret=s3["secret"], region_name=s3["region"]
        )
        store = remote_store.Store(backend, root_path=root)
        return dagster_io_manager(store, serializer=ParquetSerializer() if serializer == "parquet" else serializer)
    raise ValueError(f"{implementation} on {storage}")


def our_s3_store(s3: dict[str, str], root: str):
    """Our Store on the benchmark's S3 server (`s3` from `s3_env`), every object under `root`."""
    from dagster_remote_store import Store
    from dagster_remote_store.backends import S3Backend

    backend = S3Backend(
        s3["bucket"], endpoint_url=s3["endpoint"], key=s3["key"], secret=s3["secret"],
        region_name=s3["region"], allow_http=True,
    )
    return Store(backend, root_path=root)


@functools.cache
def share_one_instance() -> None:
    """Makes every hand-built context share one ephemeral instance. Dagster
    otherwise creates one (a SQLite database, migrated) per context, about 40 ms
    each, which would make building 1000 contexts cost more than all the timed work."""
    import contextlib

    from dagster import DagsterInstance
    from dagster._core.execution import build_resources

    shared = DagsterInstance.ephemeral()
    build_resources.ephemeral_instance_if_missing = lambda instance: contextlib.nullcontext(instance or shared)


def output_context(key: list[str], partition: str | None = None, partitions_def=None):
    from dagster import build_output_context

    share_one_instance()
    return build_output_context(asset_key=key, partition_key=partition, asset_partitions_def=partitions_def)


def input_context(key: list[str], annotation=None, partitions_def=None, key_range=None, upstream=None, metadata=None):
    from dagster import DagsterType, build_input_context

    share_one_instance()
    kwargs: dict[str, Any] = {"definition_metadata": metadata} if metadata else {}
    if annotation is not None:
        kwargs["dagster_type"] = DagsterType(type_check_fn=lambda _, __: True, name="T", typing_type=annotation)
    return build_input_context(
        asset_key=key, asset_partitions_def=partitions_def, asset_partition_key_range=key_range,
        upstream_output=upstream, **kwargs,
    )


# --- memory -----------------------------------------------------------------------------------------


def rss_mib() -> tuple[float, float]:
    """(current, peak since the last reset) resident memory of this process, in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    kib = lambda name: float(fields[name].split()[0]) / 1024  # noqa: E731
    return kib("VmRSS"), kib("VmHWM")


def reset_peak() -> float:
    """Resets the peak resident memory to the current one (Linux); returns it."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return rss_mib()[0]


# --- workloads (run inside one case process) ---------------------------------------------------


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def small(implementation: str, storage: str, sizes: Sizes) -> dict:
    """Many small assets: write all, then load all; seconds per asset."""
    value = {f"field_{i}": "x" * 20 for i in range(40)}  # about 1 KB pickled
    # A fresh process's first calls import modules and fill caches: not what an asset
    # costs, so a few assets go first, untimed, elsewhere.
    warm_up = io_manager(implementation, storage, fresh_root(storage))
    for key in [["warm_up", f"asset_{i}"] for i in range(20)]:
        out = output_context(key)
        warm_up.handle_output(out, value)
        warm_up.load_input(input_context(key, upstream=out))
    writes, loads = [], []
    for _ in range(sizes.rounds):
        root = fresh_root(storage)
        io = io_manager(implementation, storage, root)
        keys = [["small", f"asset_{i}"] for i in range(sizes.small_assets)]
        outputs = [output_context(k) for k in keys]
        inputs = [input_context(k, upstream=o) for k, o in zip(keys, outputs)]
        seconds, _ = timed(lambda: [io.handle_output(c, value) for c in outputs])
        writes.append(seconds / len(keys))
        seconds, loaded = timed(lambda: [io.load_input(c) for c in inputs])
        assert loaded[-1] == value
        loads.append(seconds / len(keys))
    return {"write_seconds_per_asset": writes, "load_seconds_per_asset": loads}


def fan_in(implementation: str, storage: str, sizes: Sizes) -> dict:
    """Daily partitions of about 10 KB each, loaded as one input of all of them."""
    from dagster import DailyPartitionsDefinition, PartitionKeyRange

    days = DailyPartitionsDefinition(start_date="2025-01-01")
    keys = days.get_partition_keys()[: sizes.partitions]
    value = {"rows": list(range(1200)), "pad": "y" * 6000}  # about 10 KB pickled
    root = fresh_root(storage)
    io = io_manager(implementation, storage, root)
    for key in keys:
        io.handle_output(output_context(["daily"], key, days), value)
    context = input_context(["daily"], partitions_def=days, key_range=PartitionKeyRange(keys[0], keys[-1]))
    loads = []
    for _ in range(sizes.rounds):
        seconds, loaded = timed(lambda: io.load_input(context))
        assert len(loaded) == len(keys)
        loads.append(seconds)
    return {"load_seconds": loads, "partitions": len(keys)}


def frame(mib: int):
    import numpy as np
    import pandas as pd

    rows = (mib * MIB) // 32  # four 8-byte columns
    rng = np.random.default_rng(1)
    return pd.DataFrame({name: rng.random(rows) for name in "abcd"})


def warm_memory(mib: int = 1024) -> None:
    """Touches `mib` MiB and frees it, so that the timed step after it allocates memory the VM has backed.

    These VMs hand memory that has been free for about two seconds back to the host (free page
    reporting), and the first touch of such memory faults on the host, several times slower than
    a page fault inside the VM. Large allocations (page-cache folios, frame buffers) come from
    exactly those blocks, so without this a round's speed would depend on what earlier rounds
    and cases left behind rather than on the implementation. The kernel hands out the pages
    freed last first, and every implementation gets the same warm-up."""
    block = bytearray(mib * MIB)  # untouched until written
    pages = range(0, len(block), 4096)
    block[::4096] = b"\x01" * len(pages)
    del block


def as_frame(loaded: Any) -> Any:
    """The pandas DataFrame an input annotated `pd.DataFrame` works with. remote-store's Parquet
    serializer returns a pyarrow Table whatever the annotation asks for; the asset would have to
    convert it, so that conversion is part of the load."""
    import pandas as pd

    return loaded if isinstance(loaded, pd.DataFrame) else loaded.to_pandas()


def large(implementation: str, storage: str, sizes: Sizes, serializer: str) -> dict:
    """One large pandas DataFrame: write then read; MiB/s and peak memory above the baseline."""
    import pandas as pd

    writes, reads, write_rss, read_rss = [], [], [], []
    for _ in range(sizes.large_rounds):
        root = fresh_root(storage)
        io = io_manager(implementation, storage, root, serializer)
        out = output_context(["large"])
        into = input_context(["large"], annotation=pd.DataFrame, upstream=out)
        df = frame(sizes.large_mib)
        size_mib = df.memory_usage(index=False).sum() / MIB
        # Every write starts with no dirty pages waiting for the disk: otherwise the
        # kernel throttles whichever case comes after the last one's 256 MiB, and
        # the figure measures the disk and the order of the cases.
        os.sync()
        warm_memory()
        base = reset_peak()
        seconds, _ = timed(lambda: io.handle_output(out, df))
        writes.append(size_mib / seconds)
        write_rss.append(rss_mib()[1] - base)
        del df
        warm_memory()
        base = reset_peak()
        seconds, back = timed(lambda: as_frame(io.load_input(into)))
        reads.append(size_mib / seconds)
        # Beyond the loaded frame itself.
        read_rss.append(rss_mib()[1] - base - size_mib)
        assert isinstance(back, pd.DataFrame) and len(back) == (sizes.large_mib * MIB) // 32
        del back
        remove_objects(storage, root)
    return {
        "mib": sizes.large_mib,
        "write_mib_per_s": writes,
        "read_mib_per_s": reads,
        "write_extra_rss_mib": write_rss,
        "read_extra_rss_mib": read_rss,
    }


def columns(implementation: str, storage: str, sizes: Sizes) -> dict:
    """One column of a large four-column pandas DataFrame stored as Parquet, loaded by an input
    that asks for it (`AssetIn(metadata={"columns": ["a"]})`): seconds per load. Where the IO
    manager reads every column (remote-store), the asset selects the one it needs."""
    import pandas as pd

    root = fresh_root(storage)
    io = io_manager(implementation, storage, root, "parquet")
    out = output_context(["wide"])
    io.handle_output(out, frame(sizes.large_mib))
    into = input_context(["wide"], annotation=pd.DataFrame, upstream=out, metadata={"columns": ["a"]})
    loads = []
    for _ in range(sizes.large_rounds):
        warm_memory()
        seconds, back = timed(lambda: as_frame(io.load_input(into))[["a"]])
        assert list(back.columns) == ["a"] and len(back) == (sizes.large_mib * MIB) // 32
        loads.append(seconds)
        del back
    remove_objects(storage, root)
    return {"load_seconds": loads}


def fresh_root(storage: str) -> str:
    if storage == "local":
        return tempfile.mkdtemp(prefix="bench-", dir=os.environ.get("BENCH_TMP"))
    return f"bench/{uuid.uuid4().hex}"


def remove_objects(storage: str, root: str) -> None:
    """Removes what a large round stored under `root`, so that the S3 server, which keeps its
    objects in memory, holds one round's at a time. s3s-fs keeps a key as the path of a file
    in its bucket's folder, so the round's objects are the folder `root`."""
    if storage == "local":
        shutil.rmtree(root)
    elif "BENCH_S3_DATA" in os.environ:
        shutil.rmtree(Path(os.environ["BENCH_S3_DATA"]) / root)


WORKLOADS: dict[str, Callable[..., dict]] = {
    "small": small,
    "fan-in": fan_in,
    "large pickle": lambda i, s, z: large(i, s, z, "pickle"),
    "large parquet": lambda i, s, z: large(i, s, z, "parquet"),
    "columns": columns,
}

# Which workloads run on which storage, and which implementations can do them.
PLAN = [
    ("small", "local"),
    ("small", "s3"),
    ("fan-in", "local"),
    ("fan-in", "s3"),
    ("fan-in", "s3+latency"),
    ("large pickle", "local"),
    ("large pickle", "s3"),
    ("large parquet", "local"),
    ("large parquet", "s3"),
    ("columns", "s3"),
    ("columns", "s3+latency"),
]
# Parquet: only the implementations that have a Parquet serializer.
PARQUET = {OURS, "remote-store 0.33"}
PARQUET_WORKLOADS = {"large parquet", "columns"}


# --- the parent: run cases, summarise -------------------------------------------------------------


# Workloads whose rounds each run in a process of their own, taking turns with the other
# implementations: a slow spell of the shared machine (the disk after mass removals, a
# neighbour's load) then falls on every implementation's rounds alike, not on whichever
# ran through it. Fan-in runs its rounds in one process: writing its 365 partitions through
# 20 ms of latency, once per process, takes longer than the loads measured.
ROUND_BY_ROUND = {"small", "large pickle", "large parquet"}


def run_case(workload: str, storage: str, implementation: str, quick: bool, one_round: bool) -> dict:
    command = [sys.executable, __file__, "--case", workload, storage, implementation]
    if quick:
        command.append("--quick")
    if one_round:
        command.append("--one-round")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    return result


def check_prompt_s3_answers(limit_s: float = 0.02) -> None:
    """Stops the run if small GETs from the S3 server wait for delayed acknowledgements. A
    server with Nagle's algorithm on (s3s-fs's own binary) sends a response's body only once
    its head is acknowledged, which Linux holds back for 40 ms: a 10 kB read took 44 ms
    instead of 0.3, and every small and fan-in figure over S3 would measure that."""
    store = our_s3_store(s3_env(latency=False), fresh_root("s3"))
    store.write("probe.bin", bytes(10_000))
    seconds = statistics.median(timed(lambda: store.read_bytes("probe.bin"))[0] for _ in range(9))
    store.delete("probe.bin")
    if seconds > limit_s:
        raise SystemExit(f"the S3 server at {s3_env(latency=False)['endpoint']} takes {seconds * 1e3:.1f} ms for a 10 kB GET: it waits for delayed acknowledgements")


def wait_for_quiet_disk(folders: list[str], limit_us: float = 50, patience_s: float = 600) -> None:
    """Waits until creating a small file in each of `folders` takes under `limit_us` µs, three times 15 s apart.
    After thousands of files are removed (the last run's cleanup, the S3 server's old data,
    `cargo xtask test`), creating files on this machine's ext4 takes 300-900 µs each instead of
    25-40, for minutes, whichever implementation creates them, starting some seconds after the
    removal: small writes measured then would measure that. It does not stall everywhere at
    once, so the probe creates files where the cases will: in the run's folder and among the
    S3 server's files. The probe's files stay until the run ends, as every case's do."""
    started, quiet, slow = time.monotonic(), 0, False
    while quiet < 3:
        per_file_us = max(creation_us(folder) for folder in folders)
        waited = time.monotonic() - started
        quiet = quiet + 1 if per_file_us < limit_us else 0
        if quiet == 0:
            if waited > patience_s:
                print(f"file creation still takes {per_file_us:.0f} µs after {waited:.0f} s; small writes will show it")
                return
            print(f"file creation takes {per_file_us:.0f} µs a file, as after mass removals: waiting", flush=True)
            slow = True
        if quiet < 3:
            time.sleep(15)
    if slow:
        print(f"file creation back to {per_file_us:.0f} µs after {waited:.0f} s", flush=True)


def creation_us(folder: str, files: int = 200) -> float:
    """µs to create a 1 KB file, over `files` files in a new folder under `folder`."""
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=folder))
    began = time.perf_counter()
    for i in range(files):
        (probe / str(i)).write_bytes(b"x" * 1000)
    return (time.perf_counter() - began) / files * 1e6


def limit(sizes: Sizes) -> dict | None:
    binary = os.environ.get("BENCH_LIMIT_BIN")
    if not binary:
        return None
    done = subprocess.run([binary, str(sizes.large_mib), str(sizes.large_rounds)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    raw = json.loads(done.stdout)
    return {
        "mib": raw["mib"],
        "write_mib_per_s": [raw["mib"] / s for s in raw["put_seconds"]],
        "complete_seconds": raw["complete_seconds"],
        "single_put_mib_per_s": [raw["mib"] / s for s in raw["single_put_seconds"]],
        "read_mib_per_s": [raw["mib"] / s for s in raw["get_seconds"]],
        "ranged_read_mib_per_s": [raw["mib"] / s for s in raw["ranged_get_seconds"]],
        "kept_ranged_read_mib_per_s": [raw["mib"] / s for s in raw["kept_ranged_get_seconds"]],
    }


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    memory = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    versions = {}
    for package in ("dagster", "dagster-aws", "remote-store", "dagster-remote-store", "pandas", "pyarrow"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a package that is not installed has no version
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / (1 << 20), 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "latency_ms": float(os.environ.get("BENCH_LATENCY_MS", "0")),
        "packages": versions,
    }


# The figure each workload is judged by: (result field, "time" (lower is better) or "rate" (higher is better)).
FIGURES = {
    "small": [("write_seconds_per_asset", "time"), ("load_seconds_per_asset", "time")],
    "fan-in": [("load_seconds", "time")],
    "columns": [("load_seconds", "time")],
    "large pickle": [("write_mib_per_s", "rate"), ("read_mib_per_s", "rate"), ("write_extra_rss_mib", "mem"), ("read_extra_rss_mib", "mem")],
    "large parquet": [("write_mib_per_s", "rate"), ("read_mib_per_s", "rate"), ("write_extra_rss_mib", "mem"), ("read_extra_rss_mib", "mem")],
}


def summarise(results: list[dict], limits: dict | None, info: dict, sizes: Sizes, quick: bool) -> str:
    lines = [
        "# Benchmark results" + (" (quick run: smaller sizes, fewer rounds)" if quick else ""),
        "",
        f"small: {sizes.small_assets} assets x {sizes.rounds} rounds; fan-in: {sizes.partitions} partitions x "
        f"{sizes.rounds} rounds; large: {sizes.large_mib} MiB x {sizes.large_rounds} rounds.",
        "",
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}, "
        f"S3 = s3s-fs on loopback, latency case +{info['latency_ms']:.0f} ms round trip. Medians of the rounds, "
        "but memory is the worst round; ratio = how many times better ours is than that implementation, in the same run.",
        "",
        "| workload | storage | figure | implementation | median (memory: worst) | ours vs it |",
        "|---|---|---|---|---:|---:|",
    ]
    for workload, storage in PLAN:
        cases = [r for r in results if r["workload"] == workload and r["storage"] == storage]
        ours = next((c for c in cases if c["implementation"] == OURS), None)
        for field, kind in FIGURES[workload]:
            for case in cases:
                if "error" in case["result"]:
                    lines.append(f"| {workload} | {storage} | {field} | {case['implementation']} | error: {case['result']['error'][:80]} | |")
                    continue
                median = typical(case["result"][field], kind)
                ratio = ""
                if ours is not None and case is not ours and "error" not in ours["result"]:
                    mine = typical(ours["result"][field], kind)
                    if kind == "time" and mine > 0:
                        ratio = f"{median / mine:.2f}x"
                    elif kind == "rate" and median > 0:
                        ratio = f"{mine / median:.2f}x"
                    elif kind == "mem" and mine >= 1:  # below a MiB, the peak is noise
                        ratio = f"{median / mine:.2f}x"
                lines.append(f"| {workload} | {storage} | {field} | {case['implementation']} | {shown(median, field)} | {ratio} |")
        if limits and storage == "s3" and workload.startswith("large") and "error" not in limits and ours and "error" not in ours["result"]:
            for field, how, limit_field in (
                ("write_mib_per_s", "object_store alone (the limit)", "write_mib_per_s"),
                ("write_mib_per_s", "object_store alone, one PUT, no parts", "single_put_mib_per_s"),
                ("read_mib_per_s", "object_store alone (the limit)", "read_mib_per_s"),
                ("read_mib_per_s", "object_store alone, 8 MiB ranges 4 at once", "ranged_read_mib_per_s"),
                ("read_mib_per_s", "the same ranges, kept in one new buffer", "kept_ranged_read_mib_per_s"),
            ):
                if limit_field not in limits:  # a run from before this figure was measured
                    continue
                limit_median = statistics.median(limits[limit_field])
                mine = statistics.median(ours["result"][field])
                lines.append(
                    f"| {workload} | {storage} | {field} | {how} | {shown(limit_median, field)} | "
                    f"ours at {100 * mine / limit_median:.0f}% |"
                )
                if limit_field == "write_mib_per_s" and "complete_seconds" in limits and workload == "large pickle":
                    # The part of any multipart write that only the server can shorten; once.
                    lines.append(
                        f"| {workload} | {storage} | complete_seconds | object_store alone: the server completing "
                        f"the upload, every part in | {statistics.median(limits['complete_seconds']):.2f} s of "
                        f"{limits['mib'] / statistics.median(limits['write_mib_per_s']):.2f} s | |"
                    )
    return "\n".join(lines) + "\n"


def typical(rounds: list[float], kind: str) -> float:
    """The figure a case is summed up by: the median of its rounds, but for memory the worst
    round, the peak a Dagster step (a process of its own) has to have room for."""
    return max(rounds) if kind == "mem" else statistics.median(rounds)


def shown(value: float, field: str) -> str:
    if "per_asset" in field:
        return f"{value * 1e3:.3f} ms"
    if field.endswith("seconds"):
        return f"{value:.3f} s"
    if field.endswith("per_s"):
        return f"{value:.0f} MiB/s"
    return f"{value:.0f} MiB"


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars, labels = [], []
    for workload, storage in PLAN:
        cases = [r for r in results if r["workload"] == workload and r["storage"] == storage]
        ours = next((c for c in cases if c["implementation"] == OURS and "error" not in c["result"]), None)
        if ours is None:
            continue
        for field, kind in FIGURES[workload]:
            if kind == "mem":
                continue
            for case in cases:
                if case is ours or "error" in case["result"]:
                    continue
                mine, theirs = statistics.median(ours["result"][field]), statistics.median(case["result"][field])
                ratio = theirs / mine if kind == "time" else mine / theirs
                bars.append(ratio)
                labels.append(f"{workload} {storage} {field.split('_')[0]}\nvs {case['implementation']}")
    figure, axis = plt.subplots(figsize=(10, 0.42 * len(bars) + 1.5))
    axis.barh(range(len(bars)), bars, color=["#2a7" if b >= 1 else "#c44" for b in bars])
    axis.set_yticks(range(len(bars)), labels, fontsize=7)
    axis.axvline(1, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("times faster than the other implementation (median, same run; log scale)")
    axis.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benches/results"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    parser.add_argument("--only", nargs="*", help="workload names to run (default: all)")
    parser.add_argument("--summarise", type=Path, metavar="RESULTS_JSON", help="only write results.md and chart.png from a run's results.json")
    parser.add_argument("--case", nargs=3, metavar=("WORKLOAD", "STORAGE", "IMPLEMENTATION"), help=argparse.SUPPRESS)
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    if args.case:
        if args.one_round:
            sizes.rounds = sizes.large_rounds = 1
        workload, storage, implementation = args.case
        print(json.dumps(WORKLOADS[workload](implementation, storage, sizes)))
        return

    if args.summarise:
        run = json.loads(args.summarise.read_text())
        write_summary(args.out, run["results"], run["object_store_limit"], run["machine"], Sizes(run["quick"]), run["quick"])
        return

    # Every case's local files go under one folder, removed once the run is over: removing
    # thousands of files between cases slows the next case's file creation for minutes
    # (see `wait_for_quiet_disk`), so which case came first would show in the figures.
    run_folder = tempfile.mkdtemp(prefix="bench-run-", dir=os.environ.get("BENCH_TMP"))
    os.environ["BENCH_TMP"] = run_folder
    results, limits = [], None
    try:
        wait_for_quiet_disk([run_folder] + ([os.environ["BENCH_S3_DATA"]] if "BENCH_S3_DATA" in os.environ else []))
        if "BENCH_S3_ENDPOINT" in os.environ:
            check_prompt_s3_answers()
        for workload, storage in PLAN:
            if args.only and workload not in args.only:
                continue
            if storage == "s3" and workload.startswith("large") and limits is None:
                # Measured right before the large S3 cases, so that it meets the server and the
                # machine in the state they do.
                limits = limit(sizes)
            implementations = [i for i in IMPLEMENTATIONS[storage] if workload not in PARQUET_WORKLOADS or i in PARQUET]
            cases: dict[str, dict] = {i: {} for i in implementations}
            one_round = workload in ROUND_BY_ROUND
            rounds = (sizes.large_rounds if workload.startswith("large") else sizes.rounds) if one_round else 1
            for _ in range(rounds):
                for implementation in implementations:
                    if "error" not in cases[implementation]:
                        add_round(cases[implementation], run_case(workload, storage, implementation, args.quick, one_round))
            for implementation, result in cases.items():
                print(f"{workload:14} {storage:11} {implementation:32} {summary_line(result)}", flush=True)
                results.append({"workload": workload, "storage": storage, "implementation": implementation, "result": result})
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"machine": info, "quick": args.quick, "results": results, "object_store_limit": limits}, indent=1))
    write_summary(args.out, results, limits, info, sizes, args.quick)


def add_round(case: dict, result: dict) -> None:
    """Adds one process's `result` to the `case` it is a round of: figures are lists of
    rounds, wall time adds up, and an error ends the case."""
    if "error" in result:
        case.clear()
        case.update(result)
        return
    for field, value in result.items():
        if isinstance(value, list):
            case.setdefault(field, []).extend(value)
        elif field == "wall_seconds":
            case[field] = case.get(field, 0) + value
        else:
            case[field] = value


def write_summary(out: Path, results: list[dict], limits: dict | None, info: dict, sizes: Sizes, quick: bool) -> None:
    (out / "results.md").write_text(summarise(results, limits, info, sizes, quick))
    chart(results, out / "chart.png")
    print((out / "results.md").read_text())


def summary_line(result: dict) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    return ", ".join(
        f"{key}={shown(typical(value, 'mem' if key.endswith('_rss_mib') else ''), key)}"
        for key, value in result.items()
        if isinstance(value, list)
    )


if __name__ == "__main__":
    main()
