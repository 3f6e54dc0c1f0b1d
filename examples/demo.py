"""Materialize the example project into a folder and show what got stored.

    python examples/demo.py OUTPUT_DIR

Runs every asset of ``dagster_project`` in-process (``dagster.materialize``),
storing them under OUTPUT_DIR, then lists the stored objects, shows the output
metadata of one materialization and loads one object back. Dagster's own
instance lives in a temporary DAGSTER_HOME, so nothing is written outside
OUTPUT_DIR and the temporary folder. Exits 1 if a run fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, materialize
from dagster_shared.error import SerializableErrorInfo

from dagster_remote_store import CHECKSUM_SIDECAR_SUFFIX, PickleSerializer, Store
from dagster_remote_store.backends import LocalBackend

from dagster_project.definitions import ASSETS, DAILY, build_definitions

# The top-level names the project's assets are stored under.
_ASSET_NAMES = {key.path[0] for assets_def in ASSETS for key in assets_def.keys}
_EXTENSIONS = {".pkl", ".json"}

# The temporary Dagster instance: no telemetry, and only warnings and errors
# from Dagster's loggers on the console.
_DAGSTER_YAML = """\
telemetry:
  enabled: false
python_logs:
  python_log_level: WARNING
"""


class RunFailed(Exception):
    """A ``materialize`` call that did not succeed."""


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} OUTPUT_DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="dagster-home-") as home:
        Path(home, "dagster.yaml").write_text(_DAGSTER_YAML)
        os.environ["DAGSTER_HOME"] = home
        with Store(LocalBackend(root=str(root))) as store, DagsterInstance.get() as instance:
            removed = _wipe_previous_demo(store)
            print(f"Store: {root}" + (f" (removed {removed} files of a previous demo)" if removed else ""))
            try:
                result = _materialize_everything(build_definitions(str(root)), instance)
            except RunFailed as failure:
                print(f"error: {failure}", file=sys.stderr)
                return 1
            _print_stored_objects(store)
            _print_output_metadata(result, ["weekly_summary"])
            summary = PickleSerializer().deserialize(store.read_bytes("weekly_summary.pkl"))
            _print_weekly_summary(summary)
    return 0


def _demo_objects(store: Store, *, sidecars: bool = False) -> list[str]:
    """The stored objects of the project's assets (and their checksum sidecars if
    asked for); anything else in the folder is not ours."""
    return [path for path in store.list() if _is_demo_object(path, sidecars=sidecars)]


def _is_demo_object(path: str, *, sidecars: bool) -> bool:
    """``raw_orders.pkl``, ``customer_report.json``, ``daily_orders/<day>.pkl``, ..."""
    if path.endswith(CHECKSUM_SIDECAR_SUFFIX):
        if not sidecars:
            return False
        path = path.removesuffix(CHECKSUM_SIDECAR_SUFFIX)
    head, _, rest = path.partition("/")
    if rest:
        return head in _ASSET_NAMES
    return PurePosixPath(head).stem in _ASSET_NAMES and PurePosixPath(head).suffix in _EXTENSIONS


def _wipe_previous_demo(store: Store) -> int:
    paths = _demo_objects(store, sidecars=True)
    for path in paths:
        store.delete(path, missing_ok=True)
    return len(paths)


def _materialize_everything(defs: Definitions, instance: DagsterInstance) -> ExecuteInProcessResult:
    """raw_orders, each day of daily_orders then of rolling_revenue, then the unpartitioned readers.

    Returns the last run's result.
    """

    def run(selection: list[str], partition_key: str | None = None) -> ExecuteInProcessResult:
        result = materialize(
            list(defs.assets or []),
            selection=selection,
            partition_key=partition_key,
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
        if not result.success:
            what = ", ".join(selection) + (f" [{partition_key}]" if partition_key else "")
            errors = "; ".join(_root_cause(e.event_specific_data.error) for e in result.get_step_failure_events())
            raise RunFailed(f"materializing {what} failed: {errors or 'see the Dagster logs'}")
        return result

    run(["raw_orders"])
    print("Materialized raw_orders")
    for asset_name, partitions_def in (("daily_orders", DAILY), ("rolling_revenue", DAILY)):
        days = partitions_def.get_partition_keys()
        for day in days:
            run([asset_name], partition_key=day)
        print(f"Materialized {asset_name} for {len(days)} days ({days[0]} .. {days[-1]})")
    result = run(["weekly_summary", "customer_report"])
    print("Materialized weekly_summary + customer_report")
    return result


def _root_cause(error: SerializableErrorInfo | None) -> str:
    """The innermost error's message (Dagster wraps user errors in its own)."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _print_stored_objects(store: Store) -> None:
    paths = _demo_objects(store)
    sizes = {path: store.head(path).size for path in paths}
    width = max(len(path) for path in paths)
    print(f"\nStored objects:\n  {'path':<{width}}  {'bytes':>6}")
    for path, size in sizes.items():
        print(f"  {path:<{width}}  {size:>6}")
    print(f"  {f'total ({len(paths)} objects)':<{width}}  {sum(sizes.values()):>6}")
    _, metadata = store.read_with_metadata(paths[0])
    where = "user.crc32c extended attribute" if "crc32c" in metadata else f"<path>{CHECKSUM_SIDECAR_SUFFIX} sidecar"
    print(f"  (each with its CRC-32C checksum, in its {where})")


def _print_output_metadata(result: ExecuteInProcessResult, asset_key: list[str]) -> None:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(asset_key)]
    metadata: dict[str, Any] = {key: value.value for key, value in event.materialization.metadata.items()}
    print(f"\nOutput metadata of {'/'.join(asset_key)}:")
    for key in ("path", "dagster/uri", "size_bytes", "checksum"):
        print(f"  {key}: {metadata[key]}")


def _print_weekly_summary(summary: dict[str, dict[str, Any]]) -> None:
    print("\nweekly_summary.pkl loaded back through the store:")
    for day, totals in summary.items():
        print(f"  {day}: {totals['orders']} orders, {totals['revenue']:.2f} revenue")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
