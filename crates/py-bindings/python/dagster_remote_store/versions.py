"""Deleting stored outputs as Dagster's assets live: what a wipe leaves, and versions past
their retention.

:func:`plan_cleanup` reads the instance (wipes, runs in progress) and the store, and
returns a :class:`CleanupPlan`: a dry run, which deletes nothing until
:meth:`CleanupPlan.apply` is called. :func:`cleanup_sensor` runs it on a schedule. Nothing
is deleted that a current pointer names, that a run in progress wrote or may be reading,
or that an input pins; each deletion is logged with its reason.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterRunStatus,
    EventRecordsFilter,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from .errors import InvalidConfig

if TYPE_CHECKING:
    from dagster import Definitions, RepositoryDefinition
    from dagster._core.instance import DagsterInstance

__all__ = ["CleanupPlan", "Deletion", "Kept", "Retention", "cleanup_sensor", "plan_cleanup"]

_log = logging.getLogger("dagster_remote_store.cleanup")

# Versions younger than this stay: the run that wrote one may not have reported it yet.
DEFAULT_GRACE = timedelta(minutes=5)

# Runs that may still write or read: not finished, queued included.
_UNFINISHED = [
    status
    for status in ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING", "SUSPENDED")
    if hasattr(DagsterRunStatus, status)
]


@dataclass(frozen=True)
class Retention:
    """Which versions of a versioned output to keep: the last ``keep_last``, and those
    younger than ``keep_for``; a version either rule keeps stays, and so does the current
    one, whatever the rules say."""

    keep_last: int | None = None
    keep_for: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_last is None and self.keep_for is None:
            raise InvalidConfig("Retention needs keep_last= or keep_for= (or both)")
        if self.keep_last is not None and (not isinstance(self.keep_last, int) or self.keep_last < 1):
            raise InvalidConfig(f"Retention keep_last= must be a whole number of at least 1, not {self.keep_last!r}")
        if self.keep_for is not None and (not isinstance(self.keep_for, timedelta) or self.keep_for <= timedelta(0)):
            raise InvalidConfig(f"Retention keep_for= must be a positive timedelta, not {self.keep_for!r}")


@dataclass(frozen=True)
class Deletion:
    """Objects that go: a version (``version``), or an unversioned output or pointer
    (``version`` None), of ``asset_key``'s ``partition``."""

    asset_key: AssetKey
    partition: str | None
    version: str | None
    paths: tuple[str, ...]
    reason: str
    _delete: Callable[[list[str]], int] = field(repr=False, compare=False)

    def describe(self) -> str:
        what = f"version {self.version}" if self.version else "unversioned output or pointer"
        where = f" partition {self.partition!r}" if self.partition is not None else ""
        return f"{self.asset_key.to_user_string()}{where}: {what} ({', '.join(self.paths)}): {self.reason}"


@dataclass(frozen=True)
class Kept:
    """A version (or unversioned output, ``version`` None) a rule would delete that stays,
    and why; ``deferred`` when it goes once the runs that protect it have finished."""

    asset_key: AssetKey
    partition: str | None
    version: str | None
    reason: str
    deferred: bool


@dataclass
class CleanupPlan:
    """What :func:`plan_cleanup` would delete (``deletions``) and what it keeps although a
    rule would delete it (``kept``); nothing is deleted until :meth:`apply`."""

    deletions: list[Deletion]
    kept: list[Kept]
    wipes_seen_until: float | None
    """The cursor for the next plan: the time of the newest wipe event read, or just before
    the oldest wipe whose deletions were deferred (by a run in progress, or the grace period)."""

    def apply(self, log: Any = None) -> int:
        """Deletes what the plan lists, logging each deletion; returns how many objects went."""
        log = log or _log
        deleted = 0
        for deletion in self.deletions:
            log.info(f"deleting {deletion.describe()}")
            deleted += deletion._delete(list(deletion.paths))
        return deleted

    def summary(self) -> str:
        objects = sum(len(d.paths) for d in self.deletions)
        return f"{len(self.deletions)} deletions ({objects} objects), {len(self.kept)} kept by a guard"


def plan_cleanup(
    instance: DagsterInstance,
    definitions: Definitions | RepositoryDefinition,
    io_manager: Any,
    *,
    io_manager_key: str = "io_manager",
    wipes_since: float | None = None,
    wiped: Iterable[AssetKey] = (),
    grace: timedelta = DEFAULT_GRACE,
) -> CleanupPlan:
    """What to delete of what ``io_manager`` (a ``remote_store_io_manager``, the resource
    ``io_manager_key`` of ``definitions``) stores for the assets that use it:

    - everything stored for an asset (or partitions of it) before it was wiped: wipes are
      read from the instance's ``ASSET_WIPED`` events newer than ``wipes_since`` (seconds
      since the epoch; dagster 1.11 and later log them). ``wiped`` adds assets wiped now,
      for older dagster, whose wipes leave no event;
    - versions that the IO manager's ``retention`` no longer keeps.

    It never lists the current version, a version written by a run that has not finished,
    one that was current while a run that may read the asset was in progress, one pinned by
    an input (``AssetIn(metadata={"version": ...})``), or one younger than ``grace``.
    """
    from .io_manager import _dimensions, _RemoteStoreIOManagerImpl

    if not isinstance(io_manager, _RemoteStoreIOManagerImpl):
        raise InvalidConfig(
            f"plan_cleanup: {io_manager_key!r} is {type(io_manager).__name__}, not a remote_store_io_manager; "
            "a RemoteStoreIOManager from config is built with dagster.build_resources"
        )
    repository = definitions.get_repository_def() if hasattr(definitions, "get_repository_def") else definitions
    graph = repository.asset_graph
    keys = [key for key in graph.materializable_asset_keys if graph.get(key).io_manager_key == io_manager_key]
    runs = instance.get_run_records(RunsFilter(statuses=[getattr(DagsterRunStatus, s) for s in _UNFINISHED]))
    unfinished = [record.dagster_run.run_id for record in runs]
    pinned = sorted(_pinned_versions(repository))
    wipes, seen_until = _wipes(instance, wipes_since)
    now = time.time()
    for key in wiped:
        wipes.setdefault(key, []).append((now, None))

    deletions: list[Deletion] = []
    kept: list[Kept] = []
    deferred_wipes: list[float] = []
    core = io_manager.core
    for key in keys:
        guard: dict[str, Any] = {
            "unfinished_runs": unfinished,
            "readers_since": _readers_since(runs, graph, key),
            "pinned": pinned,
            "grace": grace.total_seconds(),
        }
        node = graph.get(key)
        partitions: list[str | None] = [None]
        if node.partitions_def is not None:
            partitions += list(node.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
        for partition in partitions:
            dimensions = _dimensions(partition) if partition is not None else []
            path = core.path(list(key.path), dimensions)
            plans = []
            for wiped_at, wiped_partitions in wipes.get(key, []):
                if wiped_partitions is None or partition in wiped_partitions:
                    owner = (list(key.path), dimensions)
                    plans.append(core.plan_wipe(path, wiped_at=wiped_at, owner=owner, **guard))
                    if any(item["deferred"] for item in plans[-1]["kept"]):
                        deferred_wipes.append(wiped_at)
            retention = io_manager.retention
            if retention is not None:
                keep_for = retention.keep_for.total_seconds() if retention.keep_for is not None else None
                plans.append(core.plan_retention(path, keep_last=retention.keep_last, keep_for=keep_for, **guard))
            planned: set[str] = set()
            for plan in plans:
                for item in plan["deletions"]:
                    fresh = tuple(p for p in item["paths"] if p not in planned)
                    planned.update(fresh)
                    if fresh:
                        deletions.append(
                            Deletion(key, partition, item["version"], fresh, item["reason"], core.delete_paths)
                        )
                kept += [Kept(key, partition, i["version"], i["reason"], i["deferred"]) for i in plan["kept"]]
    if deferred_wipes:
        # Read again next time: what those wipes leave goes once the guards lift.
        seen_until = min(deferred_wipes) - 1e-6
    return CleanupPlan(deletions, kept, seen_until)


def _wipes(
    instance: DagsterInstance, since: float | None
) -> tuple[dict[AssetKey, list[tuple[float, list[str] | None]]], float | None]:
    """The wipes logged after `since`, by asset: when, and which partitions (None: all); and
    the newest one's time (`since` if none)."""
    wiped_event = getattr(DagsterEventType, "ASSET_WIPED", None)
    if wiped_event is None:
        return {}, since
    # Unfiltered and without a storage-id cursor: the run-sharded SQLite storage keeps
    # run-less events in a shard of their own, and a filter by asset hides all but its newest wipe.
    with warnings.catch_warnings():
        # Deprecated in dagster 1.13 for the event types that have fetch_* methods; wipes have none.
        warnings.simplefilter("ignore", DeprecationWarning)
        records = instance.get_event_records(EventRecordsFilter(event_type=wiped_event), ascending=True)
    wipes: dict[AssetKey, list[tuple[float, list[str] | None]]] = {}
    newest = since
    for record in records:
        if since is not None and record.timestamp <= since:
            continue
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event is not None else None
        key = getattr(data, "asset_key", None)
        if key is None:
            continue
        partitions = getattr(data, "partition_keys", None)
        wipes.setdefault(key, []).append((record.timestamp, list(partitions) if partitions else None))
        newest = max(newest or 0.0, record.timestamp)
    return wipes, newest


def _readers_since(runs: Iterable[Any], graph: Any, key: AssetKey) -> float | None:
    """The earliest start of an unfinished run that may read `key`: one that materializes it
    or an asset downstream of it, or whose selection is unknown (an op job, all assets)."""
    starts = []
    children = set(graph.get(key).child_keys)
    for record in runs:
        selection = record.dagster_run.asset_selection
        if selection is None or key in selection or children & set(selection):
            started = record.start_time
            starts.append(started if started is not None else record.create_timestamp.timestamp())
    return min(starts, default=None)


def _pinned_versions(repository: Any) -> set[str]:
    """Every version an input of the code location pins (`AssetIn(metadata={"version": ...})`)."""
    pinned: set[str] = set()
    for assets_def in repository.assets_defs_by_key.values():
        if assets_def.computation is None:
            continue  # an asset defined elsewhere (external, observable): no inputs here
        for input_def in assets_def.node_def.input_defs:
            version = (input_def.metadata or {}).get("version")
            if isinstance(version, str):
                pinned.add(version)
            elif isinstance(version, Mapping):
                pinned.update(v for v in version.values() if isinstance(v, str))
    return pinned


def cleanup_sensor(
    *,
    io_manager_key: str = "io_manager",
    name: str | None = None,
    apply: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """A sensor that plans a cleanup of what the resource ``io_manager_key`` stores (see
    :func:`plan_cleanup`) and logs it; with ``apply=True`` it deletes what it planned. It
    reads wipe events after the last ones it applied (its cursor), so wipes made while it was
    stopped are applied when it runs again."""

    @sensor(
        name=name or f"{io_manager_key}_cleanup",
        minimum_interval_seconds=minimum_interval_seconds,
        required_resource_keys={io_manager_key},
        description=f"Deletes stored data of wiped assets and expired versions ({io_manager_key})",
    )
    def _cleanup(context: SensorEvaluationContext) -> SkipReason:
        since = float(context.cursor) if context.cursor else None
        io_manager = getattr(context.resources, io_manager_key)
        if context.repository_def is None:
            raise InvalidConfig(f"{context.sensor_name}: the sensor runs without its code location's definitions")
        plan = plan_cleanup(
            context.instance,
            context.repository_def,
            io_manager,
            io_manager_key=io_manager_key,
            wipes_since=since,
            grace=grace,
        )
        for kept in plan.kept:
            context.log.info(f"keeping {kept.asset_key.to_user_string()} {kept.version or ''}: {kept.reason}")
        if not apply:
            for deletion in plan.deletions:
                context.log.info(f"would delete {deletion.describe()}")
            return SkipReason(f"dry run: {plan.summary()}")
        deleted = plan.apply(context.log)
        if plan.wipes_seen_until is not None:
            context.update_cursor(repr(plan.wipes_seen_until))
        return SkipReason(f"deleted {deleted} objects: {plan.summary()}")

    return _cleanup
