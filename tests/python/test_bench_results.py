"""benches/bench.py's bookkeeping of results, which needs no benchmark run: a partial run
(`--only`) merged into the committed one, the commits the summary names, and the latency
table of a run where a comparison was left out at some round trip."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benches"))
import bench

SIZES = bench.Sizes(quick=False, latencies_ms=[20, 80])
MACHINE = {"cores": 2, "cpu": "test", "memory_gib": 1, "python": "3", "our_max_concurrency": 16}


def fan_in(storage: str, implementation: str, seconds: float, commit: str) -> dict:
    result = {"load_seconds": [seconds] * 3}
    case = {"workload": "fan-in 365", "storage": storage, "implementation": implementation}
    return {**case, "commit": commit, "result": result}


def test_a_partial_run_replaces_its_cases_and_keeps_the_others() -> None:
    earlier = {
        "results": [fan_in("s3", bench.OURS, 1.0, "old"), fan_in("local", bench.OURS, 2.0, "old")],
        "object_store_limit": {"mib": 256},
    }
    results, limits = bench.merged(earlier, [fan_in("s3", bench.OURS, 0.5, "new")], None)
    assert sorted((r["storage"], r["commit"], r["result"]["load_seconds"][0]) for r in results) == [
        ("local", "old", 2.0),
        ("s3", "new", 0.5),
    ]
    assert limits == {"mib": 256}, "the earlier limit stays when the partial run measured none"
    _, limits = bench.merged(earlier, [], {"mib": 32})
    assert limits == {"mib": 32}


def test_the_summary_names_the_commit_of_each_workload() -> None:
    one = bench.summarise([fan_in("s3", bench.OURS, 1.0, "aaa")], None, MACHINE, SIZES, quick=False)
    assert "Measured at commit aaa." in one
    small = {"workload": "small", "storage": "local", "implementation": bench.OURS, "commit": "bbb",
             "result": {"write_seconds_per_asset": [1e-4], "load_seconds_per_asset": [1e-4]}}
    two = bench.summarise([fan_in("s3", bench.OURS, 1.0, "aaa"), small], None, MACHINE, SIZES, quick=False)
    assert "Measured in 2 runs: at commit aaa: fan-in; at commit bbb: small." in two


def test_the_latency_table_marks_an_implementation_not_run_at_a_round_trip() -> None:
    results = [
        fan_in(storage, implementation, seconds, "c")
        for storage, implementation, seconds in [
            ("s3", bench.OURS, 0.1),
            ("s3", bench.DAGSTER_AWS, 0.5),
            ("s3", bench.REMOTE_STORE, 1.0),
            ("s3+80ms", bench.OURS, 2.0),
            ("s3+80ms", bench.DAGSTER_AWS, 30.0),
        ]
    ]
    lines = bench.growth_tables(results, SIZES, MACHINE)
    header = next(line for line in lines if line.startswith("| round trip"))
    [row] = [line for line in lines if line.startswith("| 80 ms")]
    assert row.count("|") == header.count("|"), "every column of the header has its cell"
    assert row.split(" | ")[2:5] == ["2.000 s", "30.000 s", "-"]
    assert row.endswith("| 15.0x |"), "the best comparison that ran, against ours"
    assert not [line for line in lines if line.startswith("| 20 ms")], "a round trip nothing ran at has no row"
