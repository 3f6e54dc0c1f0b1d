"""Benchmarks the IO manager side by side with the ones Dagster users have today.

Run by `cargo xtask bench`, which builds the wheel in release mode into a bench
venv with the comparison implementations, starts an S3 server (s3s-fs) and
proxies in front of it that add network latency, and passes their addresses in
BENCH_* variables. Every case (workload x storage x implementation) runs in
processes of its own, so peak memory is the case's own; the rounds of small and
large cases take turns with the other implementations' rounds. Contexts are built
before timing: building them is Dagster's cost, not the IO manager's.

Besides the side-by-side cases, it measures how our cost grows: with the object's size,
with the number of partitions an input loads, and with the round trip to the store.

Writes results.json (raw), results.md (medians and ratios), chart.png (ratios) and
growth.png (the growth curves) to --out.
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
FILESYSTEM = "dagster FilesystemIOManager"
DAGSTER_AWS = "dagster-aws S3PickleIOManager"
REMOTE_STORE = "remote-store 0.33"
DAGSTER_POLARS = "dagster-polars PolarsParquetIOManager"


def latency_endpoints() -> dict[int, str]:
    """The proxies `cargo xtask bench` put in front of the S3 server: round trip (ms) -> endpoint."""
    raw = os.environ.get("BENCH_S3_LATENCY_ENDPOINTS", "")
    return {int(rtt): endpoint for rtt, endpoint in (item.split("=", 1) for item in raw.split(",") if item)}


def implementations(workload: str, storage: str) -> list[str]:
    """The implementations that run `workload` on `storage`, ours first."""
    if workload.startswith("size"):
        return [OURS]
    if "polars" in workload or workload.startswith("fan-in parquet"):
        return [OURS, DAGSTER_POLARS]
    if "parquet" in workload or workload == "columns":
        return [OURS, REMOTE_STORE]
    if storage == "s3+80ms":
        # remote-store takes twice dagster-aws's time at 20 ms, and a minute a round at 80.
        return [OURS, DAGSTER_AWS]
    return [OURS, FILESYSTEM if storage == "local" else DAGSTER_AWS, REMOTE_STORE]


# --- sizes ----------------------------------------------------------------------------------------


class Sizes:
    def __init__(self, quick: bool, latencies_ms: list[int] | None = None) -> None:
        # The round trips the fan-in also runs at, each through a proxy; the run's own by default.
        self.latencies_ms = sorted(latency_endpoints()) if latencies_ms is None else latencies_ms
        self.small_assets = 100 if quick else 500
        # The fan-in of the latency cases, and the partition counts of the growth curve.
        self.partitions = 60 if quick else 365
        self.partition_counts = [10, 60] if quick else [10, 365, 3650]
        self.large_mib = 32 if quick else 256
        self.growth_mib = [16, 64] if quick else [64, 256, 1024, 4096]
        self.rounds = 3 if quick else 5
        self.large_rounds = 2 if quick else 5
        # Rounds of the cases without warmed memory, of each size of the growth curve, and
        # of the fan-in 80 ms away, where a comparison's round takes a minute.
        self.few_rounds = 2 if quick else 3


# --- storage and IO managers -------------------------------------------------------------------


def s3_env(storage: str) -> dict[str, str]:
    """The S3 server as `storage` ("s3", or "s3+<rtt>ms" through a latency proxy) reaches it."""
    env = os.environ
    endpoint = env["BENCH_S3_ENDPOINT"]
    if storage != "s3":
        endpoint = latency_endpoints()[int(storage.removeprefix("s3+").removesuffix("ms"))]
    return {
        "endpoint": endpoint,
        "bucket": env["BENCH_S3_BUCKET"],
        "key": env["BENCH_S3_KEY"],
        "secret": env["BENCH_S3_SECRET"],
        "region": env.get("BENCH_S3_REGION", "us-east-1"),
    }


def io_manager(implementation: str, storage: str, root: str, serializer: str = "pickle"):
    """The IO manager under test, on `storage`, every object under `root`."""
    if implementation == DAGSTER_POLARS:
        return polars_io_manager(storage, root)
    if storage == "local":
        if implementation == OURS:
            from dagster_remote_store import Store, remote_store_io_manager
            from dagster_remote_store.backends import LocalBackend

            return remote_store_io_manager(Store(LocalBackend(root=root)), serializer)
        if implementation == FILESYSTEM:
            from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

            return PickledObjectFilesystemIOManager(base_dir=root)
        if implementation == REMOTE_STORE:
            import remote_store
            from remote_store.backends import LocalBackend
            from remote_store.ext.dagster import ParquetSerializer, dagster_io_manager

            store = remote_store.Store(LocalBackend(root=root))
            return dagster_io_manager(store, serializer=ParquetSerializer() if serializer == "parquet" else serializer)
    s3 = s3_env(storage)
    if implementation == OURS:
        from dagster_remote_store import remote_store_io_manager

        return remote_store_io_manager(our_s3_store(s3, root), serializer)
    if implementation == DAGSTER_AWS:
        import boto3
        from dagster_aws.s3 import PickledObjectS3IOManager

        client = boto3.client(
            "s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["key"], aws_secret_access_key=s3["secret"],
            region_name=s3["region"],
        )
        return PickledObjectS3IOManager(s3["bucket"], client, s3_prefix=root)
    if implementation == REMOTE_STORE:
        import remote_store
        from remote_store.backends import S3Backend
        from remote_store.ext.dagster import ParquetSerializer, dagster_io_manager

        backend = S3Backend(
            s3["bucket"], endpoint_url=s3["endpoint"], key=s3["key"], secret=s3["secret"], region_name=s3["region"]
        )
        store = remote_store.Store(backend, root_path=root)
        return dagster_io_manager(store, serializer=ParquetSerializer() if serializer == "parquet" else serializer)
    raise ValueError(f"{implementation} on {storage}")


def polars_io_manager(storage: str, root: str):
    """dagster-polars' PolarsParquetIOManager under `root`, set up as Dagster sets a resource up.
    On S3 it writes DataFrames through s3fs and LazyFrames, and reads, through polars' own
    object_store client."""
    from dagster import build_init_resource_context
    from dagster_polars import PolarsParquetIOManager

    if storage == "local":
        manager = PolarsParquetIOManager(base_dir=root)
    else:
        s3 = s3_env(storage)
        options = {
            "key": s3["key"],
            "secret": s3["secret"],
            "client_kwargs": {"endpoint_url": s3["endpoint"], "region_name": s3["region"]},
        }
        # polars' own client refuses plain HTTP unless told so, and s3fs refuses the option.
        os.environ["AWS_ALLOW_HTTP"] = "true"
        # Before a partition is written, UPathIOManager looks for an unpartitioned object at
        # the asset's path, which s3s-fs answers with a 500 once that path is a folder on its
        # disk (S3 answers 404). Writes are the untimed setup of the fan-in: skip the look.
        from dagster._core.storage.upath_io_manager import UPathIOManager

        UPathIOManager._handle_transition_to_partitioned_asset = lambda self, context, path: None
        manager = PolarsParquetIOManager(base_dir=f"s3://{s3['bucket']}/{root}", storage_options=options)
    manager.setup_for_execution(build_init_resource_context())
    return manager


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


def output_context(key: list[str], partition: str | None = None, partitions_def=None, annotation=None):
    from dagster import build_output_context

    share_one_instance()
    kwargs: dict[str, Any] = {"dagster_type": dagster_type(annotation)} if annotation is not None else {}
    return build_output_context(asset_key=key, partition_key=partition, asset_partitions_def=partitions_def, **kwargs)


def dagster_type(annotation):
    """The Dagster type of an input or output annotated `annotation`, as Dagster makes it."""
    from dagster._core.types.dagster_type import resolve_dagster_type

    return resolve_dagster_type(annotation)


def input_context(key: list[str], annotation=None, partitions_def=None, key_range=None, upstream=None, metadata=None):
    from dagster import build_input_context

    share_one_instance()
    kwargs: dict[str, Any] = {"definition_metadata": metadata} if metadata else {}
    if annotation is not None:
        kwargs["dagster_type"] = dagster_type(annotation)
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


def fan_in(implementation: str, storage: str, sizes: Sizes, partitions: int, table: bool) -> dict:
    """Daily partitions, each about 10 KB pickled (or a 1000-row polars frame as Parquet, with
    `table`), loaded as one input of all of them: a dict of values, or for tables one frame of
    all the partitions' rows. They are written straight to the store, then loaded through
    `storage` (on "s3+<rtt>ms", through that proxy)."""
    import polars as pl
    from dagster import DailyPartitionsDefinition, PartitionKeyRange

    days = DailyPartitionsDefinition(start_date="2015-01-01")
    keys = days.get_partition_keys()[:partitions]
    rows = 1000
    if table:
        value = pl.DataFrame({"id": range(rows), "x": [i / 7 for i in range(rows)]})
    else:
        value = {"rows": list(range(1200)), "pad": "y" * 6000}
    serializer = "parquet" if table else "pickle"
    root = fresh_root(storage)
    writer = io_manager(implementation, "s3" if storage.startswith("s3") else storage, root, serializer)
    for key in keys:
        writer.handle_output(output_context(["daily"], key, days, annotation=pl.DataFrame if table else None), value)
    reader = io_manager(implementation, storage, root, serializer)
    # One frame for ours; dagster-polars loads partitions as a dict of frames, which the asset concatenates.
    annotation = (dict[str, pl.DataFrame] if implementation == DAGSTER_POLARS else pl.DataFrame) if table else None
    context = input_context(
        ["daily"], annotation=annotation, partitions_def=days, key_range=PartitionKeyRange(keys[0], keys[-1])
    )
    loads = []
    for _ in range(sizes.few_rounds if storage == "s3+80ms" else sizes.rounds):
        if table:
            seconds, loaded = timed(lambda: one_frame(reader.load_input(context)))
            assert loaded.height == rows * len(keys), loaded.height
        else:
            seconds, loaded = timed(lambda: reader.load_input(context))
            assert len(loaded) == len(keys)
        loads.append(seconds)
    return {"load_seconds": loads, "partitions": len(keys)}


def one_frame(loaded: Any) -> Any:
    """One polars frame of a fan-in's tables: what the IO manager gave, or its dict of
    partitions' frames concatenated, as an asset that needs one frame would."""
    import polars as pl

    return pl.concat(list(loaded.values())) if isinstance(loaded, dict) else loaded


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


def large(
    implementation: str, storage: str, sizes: Sizes, serializer: str, warm: bool = True, mib: int | None = None
) -> dict:
    """One large pandas DataFrame (`mib`, by default the large size): write then read; MiB/s
    and peak memory above the baseline. With `warm`, each step starts from warmed memory."""
    import pandas as pd

    mib = mib or sizes.large_mib
    writes, reads, write_rss, read_rss = [], [], [], []
    for _ in range(sizes.large_rounds):
        root = fresh_root(storage)
        io = io_manager(implementation, storage, root, serializer)
        out = output_context(["large"])
        into = input_context(["large"], annotation=pd.DataFrame, upstream=out)
        df = frame(mib)
        size_mib = df.memory_usage(index=False).sum() / MIB
        # Every write starts with no dirty pages waiting for the disk: otherwise the
        # kernel throttles whichever case comes after the last one's 256 MiB, and
        # the figure measures the disk and the order of the cases.
        os.sync()
        if warm:
            warm_memory(max(1024, mib * 5 // 4))
        base = reset_peak()
        seconds, _ = timed(lambda: io.handle_output(out, df))
        writes.append(size_mib / seconds)
        write_rss.append(rss_mib()[1] - base)
        del df
        if warm:
            warm_memory(max(1024, mib * 5 // 4))
        base = reset_peak()
        seconds, back = timed(lambda: as_frame(io.load_input(into)))
        reads.append(size_mib / seconds)
        # Beyond the loaded frame itself.
        read_rss.append(rss_mib()[1] - base - size_mib)
        assert isinstance(back, pd.DataFrame) and len(back) == (mib * MIB) // 32
        del back
        remove_objects(storage, root)
    return {
        "mib": mib,
        "write_mib_per_s": writes,
        "read_mib_per_s": reads,
        "write_extra_rss_mib": write_rss,
        "read_extra_rss_mib": read_rss,
    }


def large_polars(implementation: str, storage: str, sizes: Sizes, lazy: bool) -> dict:
    """One large polars DataFrame as Parquet, written then read back, as `large` does for
    pandas. With `lazy`, the output is a LazyFrame scanning a local Parquet file of it (the
    frame itself is gone before the write, so the write's extra memory shows whether the
    query was collected) and the input a LazyFrame, collected."""
    import polars as pl

    kind = pl.LazyFrame if lazy else pl.DataFrame
    writes, reads, write_rss, read_rss = [], [], [], []
    for _ in range(sizes.large_rounds):
        root = fresh_root(storage)
        io = io_manager(implementation, storage, root, "parquet")
        out = output_context(["large"], annotation=kind)
        into = input_context(["large"], annotation=kind, upstream=out)
        df = polars_frame(sizes.large_mib)
        size_mib, height = df.estimated_size() / MIB, df.height
        if lazy:
            source = Path(fresh_root("local")) / "source.parquet"
            df.write_parquet(source)
            del df
            df = pl.scan_parquet(source)
        os.sync()
        warm_memory()
        base = reset_peak()
        seconds, _ = timed(lambda: io.handle_output(out, df))
        writes.append(size_mib / seconds)
        write_rss.append(rss_mib()[1] - base)
        del df
        warm_memory()
        base = reset_peak()
        seconds, back = timed(lambda: collected(io.load_input(into)))
        reads.append(size_mib / seconds)
        read_rss.append(rss_mib()[1] - base - size_mib)
        assert isinstance(back, pl.DataFrame) and back.height == height
        del back
        remove_objects(storage, root)
        if lazy:
            shutil.rmtree(source.parent)
    return {
        "mib": sizes.large_mib,
        "write_mib_per_s": writes,
        "read_mib_per_s": reads,
        "write_extra_rss_mib": write_rss,
        "read_extra_rss_mib": read_rss,
    }


def polars_frame(mib: int):
    """The polars twin of `frame`: four columns of random floats, `mib` MiB."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(1)
    return pl.DataFrame({name: rng.random((mib * MIB) // 32) for name in "abcd"})


def collected(loaded: Any) -> Any:
    """A loaded polars table as the DataFrame the asset works with: a LazyFrame runs."""
    return loaded.collect() if type(loaded).__name__ == "LazyFrame" else loaded


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


def workloads(sizes: Sizes) -> dict[str, Callable[[str, str, Sizes], dict]]:
    """Every workload by name; a curve's points are workloads of their own ("size pickle 1024",
    "fan-in 3650"), so that each runs in processes of its own."""
    found: dict[str, Callable[[str, str, Sizes], dict]] = {
        "small": small,
        "columns": columns,
        "large polars": functools.partial(large_polars, lazy=False),
        "lazy polars": functools.partial(large_polars, lazy=True),
    }
    for serializer in ("pickle", "parquet"):
        found[f"large {serializer}"] = functools.partial(large, serializer=serializer)
        found[f"large {serializer} cold"] = functools.partial(large, serializer=serializer, warm=False)
        for mib in sizes.growth_mib:
            found[f"size {serializer} {mib}"] = functools.partial(large, serializer=serializer, mib=mib)
    for count in sorted({*sizes.partition_counts, sizes.partitions}):
        found[f"fan-in {count}"] = functools.partial(fan_in, partitions=count, table=False)
        found[f"fan-in parquet {count}"] = functools.partial(fan_in, partitions=count, table=True)
    return found


def plan(sizes: Sizes) -> list[tuple[str, str]]:
    """Which workloads run on which storage, in the order they run."""
    both = ("local", "s3")
    cases = [("small", storage) for storage in both]
    cases += [(f"fan-in {count}", storage) for count in sizes.partition_counts for storage in both]
    cases += [(f"fan-in {sizes.partitions}", f"s3+{rtt}ms") for rtt in sizes.latencies_ms]
    cases += [(f"fan-in parquet {count}", storage) for count in sizes.partition_counts for storage in both]
    for workload in ("large pickle", "large parquet", "large pickle cold", "large parquet cold", "large polars", "lazy polars"):
        cases += [(workload, storage) for storage in both]
    for serializer in ("pickle", "parquet"):
        cases += [(f"size {serializer} {mib}", storage) for storage in both for mib in sizes.growth_mib]
    cases += [("columns", "s3")] + [("columns", f"s3+{rtt}ms") for rtt in sizes.latencies_ms[:1]]
    return cases


def selected(workload: str, only: list[str] | None) -> bool:
    """Whether `--only` names `workload` or a family it belongs to ("fan-in", "size parquet")."""
    return not only or any(workload == name or workload.startswith(name + " ") for name in only)


# --- the parent: run cases, summarise -------------------------------------------------------------


def round_by_round(workload: str) -> bool:
    """Whether each of the workload's rounds runs in a process of its own, taking turns with the
    other implementations: a slow spell of the shared machine (the disk after mass removals, a
    neighbour's load) then falls on every implementation's rounds alike, not on whichever ran
    through it. Fan-in and columns run their rounds in one process: storing their inputs, once
    per process, takes longer than the loads measured."""
    return not workload.startswith(("fan-in", "columns"))


def rounds_of(workload: str, sizes: Sizes) -> int:
    """How many rounds a workload run round by round has."""
    if workload == "small":
        return sizes.rounds
    if workload.endswith("cold") or workload.startswith("size"):
        return sizes.few_rounds
    return sizes.large_rounds


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
    store = our_s3_store(s3_env("s3"), fresh_root("s3"))
    store.write("probe.bin", bytes(10_000))
    seconds = statistics.median(timed(lambda: store.read_bytes("probe.bin"))[0] for _ in range(9))
    store.delete("probe.bin")
    if seconds > limit_s:
        raise SystemExit(f"the S3 server at {s3_env('s3')['endpoint']} takes {seconds * 1e3:.1f} ms for a 10 kB GET: it waits for delayed acknowledgements")


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
    for package in ("dagster", "dagster-aws", "dagster-polars", "remote-store", "dagster-remote-store", "pandas", "pyarrow", "polars"):
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
        "our_max_concurrency": our_max_concurrency(),
        "packages": versions,
    }


def measured_commit() -> str:
    """The commit whose code a run measures, "+" when the work tree has changes (but for the
    results an earlier run left in benches/results, which measure nothing)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(exclude,top)benches/results")
    return git("rev-parse", "--short", "HEAD") + ("+" if changed else "")


def our_max_concurrency() -> int:
    """How many fetches our IO manager has in flight at once by default: a fan-in's bound."""
    from dagster_remote_store.io_manager import _DEFAULT_MAX_CONCURRENCY

    return _DEFAULT_MAX_CONCURRENCY


def figures(workload: str) -> list[tuple[str, str]]:
    """The figures a workload is judged by: (result field, "time" (lower is better), "rate"
    (higher is better) or "mem" (extra peak memory, lower is better))."""
    if workload == "small":
        return [("write_seconds_per_asset", "time"), ("load_seconds_per_asset", "time")]
    if workload.startswith(("fan-in", "columns")):
        return [("load_seconds", "time")]
    return [("write_mib_per_s", "rate"), ("read_mib_per_s", "rate"), ("write_extra_rss_mib", "mem"), ("read_extra_rss_mib", "mem")]


def summarise(results: list[dict], limits: dict | None, info: dict, sizes: Sizes, quick: bool) -> str:
    lines = [
        "# Benchmark results" + (" (quick run: smaller sizes, fewer rounds)" if quick else ""),
        "",
        f"small: {sizes.small_assets} assets x {sizes.rounds} rounds; fan-in: {', '.join(map(str, sizes.partition_counts))} "
        f"partitions x {sizes.rounds} rounds ({sizes.few_rounds} at 80 ms); large: {sizes.large_mib} MiB x "
        f"{sizes.large_rounds} rounds ({sizes.few_rounds} cold); sizes {', '.join(map(str, sizes.growth_mib))} MiB x "
        f"{sizes.few_rounds} rounds.",
        "",
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}, "
        f"S3 = s3s-fs on loopback, s3+N ms: through a proxy adding N ms to each round trip. Medians of the rounds, "
        "but memory is the worst round; ratio = how many times better ours is than that implementation, in the same run. "
        "Every large and size case starts each write and read from warmed memory (`warm_memory`) but the cold ones.",
        "",
        *commits_line(results),
        "| workload | storage | figure | implementation | median (memory: worst) | ours vs it |",
        "|---|---|---|---|---:|---:|",
    ]
    for workload, storage in plan(sizes):
        cases = [r for r in results if r["workload"] == workload and r["storage"] == storage]
        if not cases:
            continue
        ours = next((c for c in cases if c["implementation"] == OURS), None)
        for field, kind in figures(workload):
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
        if limits and storage == "s3" and workload in ("large pickle", "large parquet") and "error" not in limits and ours and "error" not in ours["result"]:
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
    lines += growth_tables(results, sizes, info)
    return "\n".join(lines) + "\n"


def commits_line(results: list[dict]) -> list[str]:
    """Which commit measured which workloads, where a partial run (`--only`) updated an earlier one."""
    by_commit: dict[str, list[str]] = {}
    for r in results:
        workload = r["workload"].rsplit(" ", 1)[0] if r["workload"].split()[-1].isdigit() else r["workload"]
        names = by_commit.setdefault(r.get("commit", "?"), [])
        if workload not in names:
            names.append(workload)
    if len(by_commit) < 2:
        return [f"Measured at commit {next(iter(by_commit), '?')}.", ""]
    return ["Measured in " + str(len(by_commit)) + " runs: " + "; ".join(f"at commit {c}: {', '.join(w)}" for c, w in by_commit.items()) + ".", ""]


def growth_tables(results: list[dict], sizes: Sizes, info: dict) -> list[str]:
    """The growth curves as tables: ours by size, every implementation by partition count and
    by round trip, with the bound a fan-in's round trips set."""
    def result(workload: str, storage: str, implementation: str = OURS) -> dict | None:
        found = next((r["result"] for r in results if (r["workload"], r["storage"], r["implementation"]) == (workload, storage, implementation)), None)
        return None if found is None or "error" in found else found

    lines = ["", "## Growth with size (ours)", "", "| serializer | storage | MiB | write MiB/s | read MiB/s | write extra MiB (worst) | read extra MiB (worst) |", "|---|---|---:|---:|---:|---:|---:|"]
    for serializer in ("pickle", "parquet"):
        for storage in ("local", "s3"):
            for mib in sizes.growth_mib:
                found = result(f"size {serializer} {mib}", storage)
                if found:
                    lines.append(
                        f"| {serializer} | {storage} | {mib} | {statistics.median(found['write_mib_per_s']):.0f} | "
                        f"{statistics.median(found['read_mib_per_s']):.0f} | {max(found['write_extra_rss_mib']):.0f} | "
                        f"{max(found['read_extra_rss_mib']):.0f} |"
                    )
    lines += ["", "## Growth with partitions: ms per partition of a fan-in load", "", "| value | storage | implementation | " + " | ".join(f"{n} partitions" for n in sizes.partition_counts) + " |", "|---|---|---|" + "---:|" * len(sizes.partition_counts)]
    for table in (False, True):
        for storage in ("local", "s3"):
            for implementation in implementations(f"fan-in{' parquet' if table else ''} 1", storage):
                cells = []
                for count in sizes.partition_counts:
                    found = result(f"fan-in{' parquet' if table else ''} {count}", storage, implementation)
                    cells.append(f"{1e3 * statistics.median(found['load_seconds']) / count:.3f}" if found else "")
                if any(cells):
                    lines.append(f"| {'polars frame (Parquet)' if table else 'pickle'} | {storage} | {implementation} | " + " | ".join(cells) + " |")
    concurrency = info.get("our_max_concurrency")
    lines += ["", f"## Growth with latency: seconds to load {sizes.partitions} partitions (pickle)", "",
              f"The bound is partitions / concurrency x round trip, with our IO manager's {concurrency} fetches in flight.", "",
              "| round trip | bound | " + " | ".join(implementations("fan-in", "s3")) + " | ours / bound | best comparison / ours |",
              "|---:|---:|" + "---:|" * (len(implementations("fan-in", "s3")) + 2)]
    for rtt in [0, *sizes.latencies_ms]:
        storage = "s3" if rtt == 0 else f"s3+{rtt}ms"
        medians = {}
        # Every column of the header, "-" for an implementation not run at this round trip.
        for implementation in implementations("fan-in", "s3"):
            found = result(f"fan-in {sizes.partitions}", storage, implementation)
            medians[implementation] = statistics.median(found["load_seconds"]) if found else None
        bound = sizes.partitions / concurrency * rtt / 1e3 if concurrency else None
        mine = medians.get(OURS)
        others = [v for k, v in medians.items() if k != OURS and v]
        if not any(medians.values()):
            continue
        cells = [f"{v:.3f} s" if v else "-" for v in medians.values()]
        lines.append(
            f"| {rtt} ms | {f'{bound:.3f} s' if bound else '-'} | " + " | ".join(cells) + " | "
            + (f"{mine / bound:.2f}x" if mine and bound else "-") + " | "
            + (f"{min(others) / mine:.1f}x" if mine and others else "-") + " |"
        )
    return lines


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


def chart(results: list[dict], sizes: Sizes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars, labels = [], []
    for workload, storage in plan(sizes):
        cases = [r for r in results if r["workload"] == workload and r["storage"] == storage]
        ours = next((c for c in cases if c["implementation"] == OURS and "error" not in c["result"]), None)
        if ours is None:
            continue
        for field, kind in figures(workload):
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


def growth_chart(results: list[dict], sizes: Sizes, info: dict, path: Path) -> None:
    """The growth curves: ours by size (MiB/s and extra peak memory), every implementation by
    partition count (ms per partition) and by round trip (seconds, with the bound)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def result(workload: str, storage: str, implementation: str = OURS) -> dict | None:
        found = next((r["result"] for r in results if (r["workload"], r["storage"], r["implementation"]) == (workload, storage, implementation)), None)
        return None if found is None or "error" in found else found

    figure, ((speed, memory), (partitions, latency)) = plt.subplots(2, 2, figsize=(13, 9))
    for serializer in ("pickle", "parquet"):
        for storage in ("local", "s3"):
            points = [(mib, result(f"size {serializer} {mib}", storage)) for mib in sizes.growth_mib]
            points = [(mib, found) for mib, found in points if found]
            if not points:
                continue
            mibs = [mib for mib, _ in points]
            for direction, style in (("write", "-"), ("read", "--")):
                label = f"{serializer} {storage} {direction}"
                speed.plot(mibs, [statistics.median(f[f"{direction}_mib_per_s"]) for _, f in points], style, marker="o", label=label)
                memory.plot(mibs, [max(f[f"{direction}_extra_rss_mib"]) for _, f in points], style, marker="o", label=label)
    for axis, title, unit in ((speed, "ours by object size", "MiB/s (median)"), (memory, "ours by object size: extra peak memory", "MiB above the baseline (worst round)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes.growth_mib, [f"{m} MiB" for m in sizes.growth_mib])
        axis.set_title(title)
        axis.set_ylabel(unit)
        axis.legend(fontsize=7)
    for table, style in ((False, "-"), (True, "--")):
        for storage in ("local", "s3"):
            for implementation in implementations(f"fan-in{' parquet' if table else ''} 1", storage):
                points = [(n, result(f"fan-in{' parquet' if table else ''} {n}", storage, implementation)) for n in sizes.partition_counts]
                points = [(n, f) for n, f in points if f]
                if points:
                    partitions.plot([n for n, _ in points], [1e3 * statistics.median(f["load_seconds"]) / n for n, f in points], style, marker="o",
                                    label=f"{'Parquet' if table else 'pickle'} {storage} {implementation}")
    partitions.set_xscale("log")
    partitions.set_yscale("log")
    partitions.set_xticks(sizes.partition_counts, [str(n) for n in sizes.partition_counts])
    partitions.set_title("fan-in load by partition count")
    partitions.set_ylabel("ms per partition (median; log scale)")
    partitions.legend(fontsize=6)
    rtts = [0, *sizes.latencies_ms]
    for implementation in implementations("fan-in", "s3"):
        points = [(rtt, result(f"fan-in {sizes.partitions}", "s3" if rtt == 0 else f"s3+{rtt}ms", implementation)) for rtt in rtts]
        points = [(rtt, f) for rtt, f in points if f]
        if points:
            latency.plot([r for r, _ in points], [statistics.median(f["load_seconds"]) for _, f in points], marker="o", label=implementation)
    concurrency = info.get("our_max_concurrency")
    if concurrency:
        latency.plot(rtts, [sizes.partitions / concurrency * rtt / 1e3 for rtt in rtts], ":", color="black", label=f"bound: partitions / {concurrency} x round trip")
    latency.set_yscale("symlog", linthresh=0.1)
    latency.set_xticks(rtts, [f"{r} ms" for r in rtts])
    latency.set_title(f"fan-in of {sizes.partitions} partitions over S3 by round trip")
    latency.set_ylabel("seconds (median; log scale above 0.1 s)")
    latency.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benches/results"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    parser.add_argument("--only", nargs="*", help="workloads or families of them to run (\"fan-in\", \"size parquet\", \"large pickle\"; default: all)")
    parser.add_argument("--summarise", type=Path, metavar="RESULTS_JSON", help="only write results.md and chart.png from a run's results.json")
    parser.add_argument("--case", nargs=3, metavar=("WORKLOAD", "STORAGE", "IMPLEMENTATION"), help=argparse.SUPPRESS)
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    if args.case:
        if args.one_round:
            sizes.rounds = sizes.large_rounds = 1
        workload, storage, implementation = args.case
        print(json.dumps(workloads(sizes)[workload](implementation, storage, sizes)))
        return

    if args.summarise:
        run = json.loads(args.summarise.read_text())
        sizes = Sizes(run["quick"], run["latencies_ms"])
        args.out.mkdir(parents=True, exist_ok=True)
        write_summary(args.out, run["results"], run["object_store_limit"], run["machine"], sizes, run["quick"])
        return

    # Every case's local files go under one folder, removed once the run is over: removing
    # thousands of files between cases slows the next case's file creation for minutes
    # (see `wait_for_quiet_disk`), so which case came first would show in the figures.
    run_folder = tempfile.mkdtemp(prefix="bench-run-", dir=os.environ.get("BENCH_TMP"))
    os.environ["BENCH_TMP"] = run_folder
    results, limits = [], None
    commit = measured_commit()
    try:
        wait_for_quiet_disk([run_folder] + ([os.environ["BENCH_S3_DATA"]] if "BENCH_S3_DATA" in os.environ else []))
        if "BENCH_S3_ENDPOINT" in os.environ:
            check_prompt_s3_answers()
        for workload, storage in plan(sizes):
            if not selected(workload, args.only):
                continue
            if storage == "s3" and workload in ("large pickle", "large parquet") and limits is None:
                # Measured right before the large S3 cases, so that it meets the server and the
                # machine in the state they do.
                limits = limit(sizes)
            cases: dict[str, dict] = {i: {} for i in implementations(workload, storage)}
            one_round = round_by_round(workload)
            for _ in range(rounds_of(workload, sizes) if one_round else 1):
                for implementation in cases:
                    if "error" not in cases[implementation]:
                        add_round(cases[implementation], run_case(workload, storage, implementation, args.quick, one_round))
            for implementation, result in cases.items():
                print(f"{workload:20} {storage:8} {implementation:38} {summary_line(result)}", flush=True)
                results.append({"workload": workload, "storage": storage, "implementation": implementation, "commit": commit, "result": result})
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    earlier = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").exists() else None
    if args.only and earlier and earlier["quick"] == args.quick:
        results, limits = merged(earlier, results, limits)
    (args.out / "results.json").write_text(json.dumps({"machine": info, "quick": args.quick, "latencies_ms": sizes.latencies_ms, "results": results, "object_store_limit": limits}, indent=1))
    write_summary(args.out, results, limits, info, sizes, args.quick)


def merged(earlier: dict, results: list[dict], limits: dict | None) -> tuple[list[dict], dict | None]:
    """A partial run's `results` and `limits` put into the `earlier` run it updates: its cases
    replace the earlier ones of the same workload and storage, the others stay, each with the
    commit it measured; the earlier limit stays unless this run measured one."""
    ran = {(r["workload"], r["storage"]) for r in results}
    kept = [r for r in earlier["results"] if (r["workload"], r["storage"]) not in ran]
    return kept + results, limits or earlier["object_store_limit"]


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
    chart(results, sizes, out / "chart.png")
    growth_chart(results, sizes, info, out / "growth.png")
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
