"""Transport faults between the IO manager and each remote server, injected by tests/servers/fault_proxy.py.

For each of S3, Azure, GCS and SFTP, a proxy sits in front of the test server. Every asset is first written
through it clean; then, with faults on, each asset is written anew and loaded back, round after round; then
every asset is loaded once more straight from the server, without the proxy. Each value must be stored and
load back exactly, or its write or load must fail with `Unavailable` (a `ConnectionError`) naming the path
and backend: no value changed, no value lost (a failed write leaves the previous value loadable, or the new
one if only its reply was lost), and no transport fault passed off as corruption (`ChecksumMismatch`) or
refusal (`PermissionDenied`).

Each backend's run prints one summary line (run pytest with -s to see them).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, build_input_context, build_output_context

from dagster_remote_store import RemoteStoreError, Store, Unavailable, remote_store_io_manager
from dagster_remote_store.backends import AzureBackend, GCSBackend, S3Backend, SFTPBackend

from conftest import REMOTE, make_backend, require_server

PROXY = Path(__file__).resolve().parents[1] / "servers" / "fault_proxy.py"

# Per connection for the byte faults (a fault whose offset the connection never reaches does not happen),
# per request for the HTTP status answers. Stalls cost a client timeout each, so they are rare.
RATES = {
    "http": "reset=0.08,drop=0.08,stall=0.01,delay=0.05,http_500=0.03,http_503=0.03,http_429=0.03",
    "sftp": "reset=0.15,drop=0.15,stall=0.01,delay=0.05,handshake_drop=0.1",
}
SMALL, LARGE, TABLES, ROUNDS = 30, 2, 6, 4
ASSETS = SMALL + LARGE + TABLES
LARGE_SIZE = 9 << 20  # above the 8 MiB part size: multipart uploads, ranged reads, checksum records


class FaultProxy:
    """fault_proxy.py in a process of its own, in front of `upstream`."""

    def __init__(self, upstream: str, seed: int, http: bool) -> None:
        command = [sys.executable, str(PROXY), "--upstream", upstream, "--seed", str(seed), "--lifetime", "600"]
        self.process = subprocess.Popen(command + ["--http"] * http, stdout=subprocess.PIPE, text=True)
        ports = json.loads(self.process.stdout.readline())
        self.port = ports["port"]
        self.control = socket.create_connection(("127.0.0.1", ports["control"]))
        self.replies = self.control.makefile("r")

    def command(self, line: str) -> dict:
        self.control.sendall(line.encode() + b"\n")
        reply = json.loads(self.replies.readline())
        assert reply["ok"], reply
        return reply

    def injected(self) -> Counter:
        counts = Counter(self.command("stats")["counts"])
        return Counter({kind: n for kind, n in counts.items() if kind not in ("connections", "requests")})

    def stop(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.communicate(timeout=10)


def upstream(kind: str) -> str:
    env = os.environ.get
    if kind == "sftp":
        return f"{env('DRS_TEST_SFTP_HOST')}:{env('DRS_TEST_SFTP_PORT')}"
    url = {"s3": "DRS_TEST_S3_ENDPOINT", "azure": "DRS_TEST_AZURE_ENDPOINT", "gcs": "DRS_TEST_GCS_URL"}[kind]
    return env(url).split("//", 1)[1].split("/", 1)[0]


def sftp_fingerprint() -> str:
    """The test server's host key fingerprint: the proxy's address is not the one in known_hosts."""
    listed = subprocess.run(
        ["ssh-keygen", "-lf", os.environ["DRS_TEST_SFTP_KNOWN_HOSTS"]], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()[1]


@contextlib.contextmanager
def contexts(asset_key: AssetKey):
    """An output context of `asset_key` and an input context reading it, closed on exit. Left to the garbage
    collector, each closes an ephemeral Dagster instance there, whose log of the closing can run in the middle
    of an unrelated `ast.parse`, which Python 3.11 then fails with "AST constructor recursion depth mismatch"."""
    with (
        build_output_context(asset_key=asset_key) as output,
        build_input_context(asset_key=asset_key, upstream_output=output) as input_,
    ):
        yield output, input_


def backend_through(kind: str, port: int, max_retries: int = 8):
    """A backend on the proxy's port, with small timeouts and backoffs so that faults cost little time."""
    env = os.environ.get
    proxied = f"http://127.0.0.1:{port}"
    http = dict(allow_http=True, max_retries=max_retries, connect_timeout=2.0, timeout=5.0, retry_timeout=60.0)
    if kind == "s3":
        return S3Backend(
            env("DRS_TEST_S3_BUCKET"),
            endpoint_url=proxied,
            key=env("DRS_TEST_S3_KEY"),
            secret=env("DRS_TEST_S3_SECRET"),
            region_name=env("DRS_TEST_S3_REGION"),
            **http,
        )
    if kind == "azure":
        account = env("DRS_TEST_AZURE_ACCOUNT")
        return AzureBackend(
            env("DRS_TEST_AZURE_CONTAINER"),
            account_name=account,
            account_key=env("DRS_TEST_AZURE_KEY"),
            account_url=f"{proxied}/{account}",
            **http,
        )
    if kind == "gcs":
        return GCSBackend(env("DRS_TEST_GCS_BUCKET"), base_url=proxied, anonymous=True, **http)
    return SFTPBackend(
        "127.0.0.1",
        port=port,
        username=env("DRS_TEST_SFTP_USER"),
        private_key=env("DRS_TEST_SFTP_KEY"),
        host_key_fingerprint=sftp_fingerprint(),
        base_path=env("DRS_TEST_SFTP_ROOT"),
        timeout=3.0,
        connect_timeout=3.0,
        max_retries=max_retries,
    )


def make_value(kind: str, rng: random.Random):
    if kind == "small":
        return {"n": rng.getrandbits(64), "text": "ünï " * rng.randrange(200), "items": [*range(rng.randrange(50))]}
    if kind == "large":
        return {"n": rng.getrandbits(64), "blob": rng.randbytes(LARGE_SIZE + rng.randrange(1 << 20))}
    rows = rng.randrange(100, 20_000)
    numbers = np.random.default_rng(rng.getrandbits(32))
    columns = {"id": np.arange(rows), "x": numbers.normal(size=rows), "s": numbers.integers(0, 9, rows).astype(str)}
    return pd.DataFrame(columns)


def same(a, b) -> bool:
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        return isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame) and a.equals(b)
    return pickle.dumps(a) == pickle.dumps(b)


class Tally:
    """What happened to every value: counts for the summary, and every broken promise."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.broken: list[str] = []

    def failed(self, what: str, path: str, kind: str, err: Exception) -> None:
        self.errors[f"{what} {type(err).__name__}"] += 1
        text = str(err)
        if not isinstance(err, Unavailable) or not isinstance(err, ConnectionError):
            self.broken.append(f"{what} of {path} raised {type(err).__name__}, not Unavailable: {text}")
        # The object's path, or its checksum record's.
        elif not (err.path or "").startswith(path) or err.path not in text or err.backend != kind or kind not in text:
            self.broken.append(f"{what} of {path}: the error does not name the path and backend {kind}: {text}")


def managers(store: Store) -> dict:
    return {"pickle": remote_store_io_manager(store), "parquet": remote_store_io_manager(store, serializer="parquet")}


def run_workload(kind: str, seed: int, tmp_path) -> tuple[Tally, Counter]:
    rng = random.Random(seed)
    proxy = FaultProxy(upstream(kind), seed, http=kind != "sftp")
    tally = Tally()
    root = f"tests/faults-{rng.getrandbits(64):016x}"
    try:
        store = Store(backend_through(kind, proxy.port), root_path=root)
        through_proxy = managers(store)
        assets = [("small", i) for i in range(SMALL)] + [("large", i) for i in range(LARGE)]
        assets += [("table", i) for i in range(TABLES)]
        # What each asset may hold: the last value stored, or one whose write failed since (its reply may be lost).
        possible: dict[tuple[str, int], list] = {}

        def serializer(asset) -> str:
            return "parquet" if asset[0] == "table" else "pickle"

        def key(asset):
            return AssetKey(["faults", asset[0], str(asset[1])])

        def write(asset, value) -> bool:
            try:
                with contexts(key(asset)) as (output, _):
                    through_proxy[serializer(asset)].handle_output(output, value)
            except RemoteStoreError as err:
                tally.failed("write", path_of(asset), kind, err)
                possible[asset] = [*possible.get(asset, []), value]
                return False
            tally.counts["written"] += 1
            possible[asset] = [value]
            return True

        def load(asset, manager, clean: bool) -> None:
            try:
                with contexts(key(asset)) as (_, context):
                    loaded = manager[serializer(asset)].load_input(context)
            except RemoteStoreError as err:
                tally.failed("load", path_of(asset), kind, err)
                if clean:
                    tally.broken.append(f"{path_of(asset)} is lost: it does not load without faults: {err}")
                return
            tally.counts["loaded"] += 1
            if not any(same(loaded, value) for value in possible[asset]):
                tally.broken.append(f"{path_of(asset)} loaded a value that was never written there")

        def path_of(asset) -> str:
            return f"faults/{asset[0]}/{asset[1]}.{'parquet' if asset[0] == 'table' else 'pkl'}"

        for asset in assets:
            assert write(asset, make_value(asset[0], rng)), f"the clean first write of {asset} failed"
        proxy.command(f"rates {RATES['sftp' if kind == 'sftp' else 'http']}")
        for _ in range(ROUNDS):
            for asset in assets:
                write(asset, make_value(asset[0], rng))
                load(asset, through_proxy, clean=False)
        injected = proxy.injected()
        store.close()
    finally:
        proxy.stop()
    with Store(make_backend(kind, tmp_path), root_path=root) as direct:
        for asset in assets:
            load(asset, managers(direct), clean=True)
    return tally, injected


@pytest.mark.parametrize("kind", REMOTE)
def test_values_survive_transport_faults_or_fail_as_unavailable(kind: str, tmp_path) -> None:
    require_server(kind)
    started = time.monotonic()
    tally, injected = run_workload(kind, seed=REMOTE.index(kind) + 1, tmp_path=tmp_path)
    print(
        f"\nfaults {kind}: {tally.counts['written']} of {ASSETS * (ROUNDS + 1)} writes stored, "
        f"{tally.counts['loaded']} of {ASSETS * (ROUNDS + 1)} loads intact ({ASSETS} of them without the proxy); "
        f"{sum(injected.values())} faults injected {dict(sorted(injected.items()))}; "
        f"errors {dict(sorted(tally.errors.items()))}; {len(tally.broken)} broken; {time.monotonic() - started:.0f} s"
    )
    assert not tally.broken, "\n".join(tally.broken)
    assert sum(injected.values()) > 0, "no fault was injected"


# The proxy that `_break_the_connections` turns on, while a test holds it.
BREAKING: list[FaultProxy] = []


def _break_the_connections() -> None:
    BREAKING[0].command("rates reset=1")
    BREAKING[0].command("cut")


class BreaksTheConnectionsWhenLoaded:
    """Unpickled partway through a load: from then on every connection through the proxy is reset."""

    def __reduce__(self):
        return (_break_the_connections, ())


@pytest.mark.parametrize("kind", REMOTE)
def test_a_load_cut_midway_fails_as_unavailable_not_as_corruption(kind: str, tmp_path) -> None:
    # A large pickle is read as a stream and verified at its end: a read that fails midway must raise its own
    # error, never compare the checksum of the part it read.
    require_server(kind)
    root = f"tests/cut-{random.getrandbits(64):016x}"
    with (
        Store(make_backend(kind, tmp_path), root_path=root) as direct,
        contexts(AssetKey(["cut", "large"])) as (output, _),
    ):
        large = [BreaksTheConnectionsWhenLoaded(), random.Random(7).randbytes(60 << 20)]
        remote_store_io_manager(direct).handle_output(output, large)
        del large  # not shown with a failure
    proxy = FaultProxy(upstream(kind), seed=1, http=kind != "sftp")
    BREAKING.append(proxy)
    try:
        with Store(backend_through(kind, proxy.port, max_retries=0), root_path=root) as store:
            manager = remote_store_io_manager(store)
            with pytest.raises(Unavailable) as raised, contexts(AssetKey(["cut", "large"])) as (_, context):
                manager.load_input(context)
            assert raised.value.path == "cut/large.pkl" and raised.value.backend == kind, raised.value
            proxy.command("clean")
            with store.open_reader("cut/large.pkl") as reader:
                assert len(reader.read(1 << 20)) == 1 << 20
                _break_the_connections()
                for _ in range(2):  # the failure stays: a broken read never passes for the end of the object
                    with pytest.raises(Unavailable):
                        reader.read()
    finally:
        BREAKING.clear()
        proxy.stop()
