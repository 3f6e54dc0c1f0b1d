"""Peak memory while a large file streams through the IO manager, in and out.

For each storage given, a file of `--gib` GiB is returned as an asset's `pathlib.Path`
output (streamed in), loaded as a `Path` input (a verified local copy), and read to its end
through an `ObjectFile` input (lazy, verified block by block). For each step it prints the
seconds, MiB/s and the process's peak resident memory above what it held before the step
(VmHWM, reset before each step), next to the file's size.

    python benches/stream_memory.py --gib 4 s3 sftp

Needs the test servers' environment (`cargo xtask servers`), as the tests do.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from dagster import AssetKey, build_input_context, build_output_context
from dagster._core.types.dagster_type import resolve_dagster_type

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from conftest import make_store  # noqa: E402

from dagster_remote_store import remote_store_io_manager  # noqa: E402

MiB = 1 << 20


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Resets VmHWM to the current resident size (Linux 4.0+); returns that size."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_mib("VmRSS")


def step(name: str, size: int, function) -> None:
    base = reset_peak()
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    extra = status_mib("VmHWM") - base
    print(
        f"  {name:<28} {seconds:7.1f} s  {size / MiB / seconds:7.1f} MiB/s  peak +{extra:7.1f} MiB",
        flush=True,
    )


def write_file(path: Path, size: int) -> None:
    block = os.urandom(8 * MiB)
    with path.open("wb") as file:
        for _ in range(size // len(block)):
            file.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("storages", nargs="+", help="local, s3, azure, gcs, sftp")
    parser.add_argument("--gib", type=float, default=4.0)
    args = parser.parse_args()
    size = int(args.gib * 1024) * MiB
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch:
        source = Path(scratch) / "big.bin"
        write_file(source, size)
        print(f"{size / MiB:.0f} MiB file, Python {sys.version.split()[0]}")
        for storage in args.storages:
            print(storage)
            store = make_store(storage, Path(scratch) / "store")
            io_manager = remote_store_io_manager(store, "bytes")
            key = AssetKey(["big"])
            step(
                "Path output, streamed in",
                size,
                lambda: io_manager.handle_output(
                    build_output_context(asset_key=key), source
                ),
            )

            def load(annotation):
                return io_manager.load_input(
                    build_input_context(
                        asset_key=key, dagster_type=resolve_dagster_type(annotation)
                    )
                )

            copies: list[Path] = []
            step("Path input, local copy", size, lambda: copies.append(load(Path)))
            assert copies[0].stat().st_size == size
            copies[0].unlink()

            def read_through() -> None:
                file = load(io.BufferedReader)
                while file.read(8 * MiB):
                    pass

            step("ObjectFile input, read to end", size, read_through)
            store.delete("big")


if __name__ == "__main__":
    main()
