"""The example project through the `dagster` CLI, in its own processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

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
    assert names == ["2026-01-01.pkl", "2026-01-01.pkl.crc32c", "2026-01-02.pkl", "2026-01-02.pkl.crc32c"]
