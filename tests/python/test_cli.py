"""The example project through the `dagster` CLI, in its own processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from dagster_remote_store import PickleSerializer, Store
from dagster_remote_store.backends import LocalBackend

from conftest import has_user_xattrs, make_backend, require_server

REPO = Path(__file__).resolve().parents[2]


def dagster(*args: str, root: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_REMOTE_STORE_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args, "-m", "examples.dagster_project.definitions"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dagster_asset_materialize_writes_through_the_io_manager(tmp_path) -> None:
    root, home = tmp_path / "store", tmp_path / "home"
    home.mkdir()
    upstream = dagster("asset", "materialize", "--select", "raw_orders", root=root, home=home)
    assert upstream.returncode == 0, upstream.stderr
    for day in ("2026-01-01", "2026-01-02"):
        run = dagster("asset", "materialize", "--select", "daily_orders", "--partition", day, root=root, home=home)
        assert run.returncode == 0, run.stderr

    raw = pickle.loads((root / "raw_orders.pkl").read_bytes())
    day_two = pickle.loads((root / "daily_orders" / "2026-01-02.pkl").read_bytes())
    assert day_two == [order for order in raw if order["day"] == "2026-01-02"]
    names = sorted(p.name for p in (root / "daily_orders").iterdir())
    objects = ["2026-01-01.pkl", "2026-01-02.pkl"]
    records = [] if has_user_xattrs(root) else [f"{name}.checksums" for name in objects]
    assert names == sorted(objects + records), "checksums in extended attributes where the filesystem has them"


@pytest.mark.parametrize("backend", ["local", "s3", "sftp"])
def test_config_driven_stores_across_step_processes(tmp_path, backend) -> None:
    """`dagster asset materialize` with a real DAGSTER_HOME and the multiprocess
    executor: every step process builds its store from config, and downstream
    steps load what upstream steps (other processes) wrote."""
    if backend != "local":
        require_server(backend)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DRS_CLI_BACKEND": backend,
        "DRS_CLI_ROOT": str(tmp_path / "store"),
        "DRS_CLI_ROOT_PATH": f"cli/{uuid.uuid4().hex}",
        "DRS_CLI_REGISTRY": str(tmp_path / "stores.toml"),
    }
    (tmp_path / "stores.toml").write_text(
        """
[backends.s3]
type = "s3"

[backends.s3.options]
bucket = "${DRS_TEST_S3_BUCKET}"
endpoint_url = "${DRS_TEST_S3_ENDPOINT}"
key = "${DRS_TEST_S3_KEY}"
secret = "${DRS_TEST_S3_SECRET}"
region_name = "${DRS_TEST_S3_REGION}"
allow_http = true

[stores.cli]
backend = "s3"
"""
    )

    def materialize(*args: str) -> None:
        run = subprocess.run(
            [
                sys.executable, "-m", "dagster", "asset", "materialize", *args,
                "-m", "tests.python.cli_project.definitions",
            ],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr[-5000:]

    materialize("--select", "raw")
    for day in ("2026-01-01", "2026-01-02"):
        materialize("--select", "daily", "--partition", day)
    materialize("--select", "summary,pid_of_summary_step")

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 4 and all(run.is_success for run in runs)
        events = [r.dagster_event for run in runs for r in instance.all_logs(run.run_id) if r.dagster_event]
        step_pids = [e.pid for e in events if e.event_type == DagsterEventType.STEP_START]
        run_pids = {e.pid for e in events if e.event_type == DagsterEventType.RUN_START}
    assert len(step_pids) == 5 and len(set(step_pids)) == 5 and not run_pids & set(step_pids), (
        "every step ran in a process of its own"
    )

    store = {
        "local": lambda: Store(LocalBackend(root=str(tmp_path / "store"))),
        "s3": lambda: make_store_at("s3"),
        "sftp": lambda: make_store_at("sftp"),
    }[backend]()
    with store.child(env["DRS_CLI_ROOT_PATH"]) as scoped:
        summary = PickleSerializer().deserialize(scoped.read_bytes("summary.pkl"))
    assert summary == {"2026-01-01": 0 + 2 + 4 + 6 + 8, "2026-01-02": 1 + 3 + 5 + 7 + 9}


def make_store_at(kind: str) -> Store:
    return Store(make_backend(kind, None))
