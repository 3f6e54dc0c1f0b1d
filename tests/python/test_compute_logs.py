"""`RemoteStoreComputeLogManager` in a real `DAGSTER_HOME`, with runs launched by the `dagster`
CLI: step logs are read back through the instance's compute log manager, as the UI reads them,
while a step runs (partial uploads) and after the run."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, job, op
from dagster._core.storage.compute_log_manager import ComputeIOType

from dagster_remote_store import InvalidConfig, RemoteStoreComputeLogManager, Store

from conftest import REMOTE, make_backend, require_server

REPO = Path(__file__).resolve().parents[2]
# The test servers whose Stores sign URLs with the credentials the tests give them (GCS's is anonymous).
SIGNING = ("s3", "azure")
GCS_HOST = "storage.googleapis.com"


def backend_options(kind: str, tmp_path: Path) -> dict[str, Any]:
    """The options of `kind`'s test server as a dagster.yaml gives them: credentials as `{env: VAR}`."""
    env = os.environ.get
    if kind == "local":
        return {"root": str(tmp_path / "store")}
    require_server(kind)
    if kind == "s3":
        return {
            "bucket": env("DRS_TEST_S3_BUCKET"),
            "endpoint_url": env("DRS_TEST_S3_ENDPOINT"),
            "key": env("DRS_TEST_S3_KEY"),
            "secret": {"env": "DRS_TEST_S3_SECRET"},
            "region_name": env("DRS_TEST_S3_REGION"),
            "allow_http": True,
        }
    if kind == "azure":
        return {
            "container": env("DRS_TEST_AZURE_CONTAINER"),
            "account_name": env("DRS_TEST_AZURE_ACCOUNT"),
            "account_key": {"env": "DRS_TEST_AZURE_KEY"},
            "account_url": env("DRS_TEST_AZURE_ENDPOINT"),
            "allow_http": True,
        }
    if kind == "gcs":
        return {
            "bucket": env("DRS_TEST_GCS_BUCKET"),
            "base_url": env("DRS_TEST_GCS_URL"),
            "anonymous": True,
            "allow_http": True,
        }
    return {
        "host": env("DRS_TEST_SFTP_HOST"),
        "port": int(env("DRS_TEST_SFTP_PORT") or 0),
        "username": env("DRS_TEST_SFTP_USER"),
        "private_key": env("DRS_TEST_SFTP_KEY"),
        "known_hosts": env("DRS_TEST_SFTP_KNOWN_HOSTS"),
        "base_path": env("DRS_TEST_SFTP_ROOT"),
    }


def wait_for(find, what: str, process: subprocess.Popen, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.stderr.read()[-3000:] if process.stderr else ''}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout} s")


@pytest.mark.parametrize("kind", ["local", *REMOTE])
def test_a_runs_step_logs_are_read_back_from_the_store_during_and_after_it(kind, tmp_path) -> None:
    home, capture, release = tmp_path / "home", tmp_path / "capture", tmp_path / "release"
    home.mkdir()
    root_path, marker = f"tests/{uuid.uuid4().hex}", uuid.uuid4().hex
    config = {
        "backend_type": kind,
        "backend_options": backend_options(kind, tmp_path),
        "root_path": root_path,
        "local_dir": str(capture),
        "prefix": "logs",
        "upload_interval": 1,
    }
    manager = {"module": "dagster_remote_store", "class": "RemoteStoreComputeLogManager", "config": config}
    (home / "dagster.yaml").write_text(json.dumps({"compute_logs": manager}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "DRS_LOG_MARKER": marker, "DRS_LOG_RELEASE": str(release)}
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "tests.python.compute_logs_project.definitions"]
    run = subprocess.Popen(
        [*command, "-j", "logs_job"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    store = Store(make_backend(kind, tmp_path), root_path=root_path)
    # The UI's machine: the same configuration, another capture folder.
    ui = RemoteStoreComputeLogManager(**{**config, "local_dir": str(tmp_path / "ui")})
    try:

        def partial_upload() -> list[str]:
            # What a running step has printed so far, read as the UI reads it.
            folders = {path.rsplit("/", 1)[0] for path in store.list("logs/storage/") if ".out.partial.parts/" in path}
            keys = [folder.removeprefix("logs/storage/").removesuffix(".out.partial.parts") for folder in folders]
            return [key for key in keys if marker.encode() in (ui.get_log_data(key.split("/")).stdout or b"")]

        [partial] = wait_for(partial_upload, "a partial upload of chatty's stdout", run)
    finally:
        release.touch()
        ui.dispose()
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-5000:]
    assert "/compute_logs/" in partial
    assert not [path for path in store.list("logs/storage/") if ".partial" in path], "the complete logs replace them"

    # Read as the UI reads, with nothing left on this machine: from the store only.
    shutil.rmtree(capture, ignore_errors=True)
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.compute_log_manager, RemoteStoreComputeLogManager)
        [dagster_run] = instance.get_runs()
        assert dagster_run.is_success
        captured = [
            record.dagster_event.logs_captured_data
            for record in instance.all_logs(dagster_run.run_id)
            if record.dagster_event and record.dagster_event.event_type == DagsterEventType.LOGS_CAPTURED
        ]
        logs: dict[str, list[tuple[str, str]]] = {}
        for data in captured:
            log_key = instance.compute_log_manager.build_log_key_for_run(dagster_run.run_id, data.file_key)
            read = instance.compute_log_manager.get_log_data(log_key)
            [step] = data.step_keys
            logs.setdefault(step, []).append((read.stdout.decode(), read.stderr.decode()))
            metadata = instance.compute_log_manager.get_log_metadata(log_key)
            assert metadata.stdout_location == store.uri(
                f"logs/storage/{dagster_run.run_id}/compute_logs/{data.file_key}.out"
            )
            # Download links: signed URLs where the Store signs them, else the webserver serves the log.
            if kind in SIGNING:
                with urllib.request.urlopen(metadata.stdout_download_url, timeout=10) as answer:
                    assert answer.read() == read.stdout
            else:
                assert metadata.stdout_download_url is None

    [(chatty_out, chatty_err)] = logs["chatty"]
    assert f"out: {marker}" in chatty_out and "out: after the partial upload" in chatty_out
    assert f"err: {marker}" in chatty_err
    # A retried step: each attempt ran in a process of its own and keeps its own log.
    attempts = sorted(out for out, _ in logs["flaky"])
    assert len(attempts) == 2 and "attempt 1" in attempts[0] and "attempt 2" in attempts[1]
    assert "attempt 2" not in attempts[0] and "the first attempt fails" in "".join(err for _, err in logs["flaky"])
    # Every capture stored its stdout and its stderr.
    finals = [path for path in store.list("logs/storage/") if path.endswith((".out", ".err"))]
    assert len(finals) == 2 * len(captured)


@op
def hello() -> None:
    print("hello from the memory store", flush=True)


@job
def hello_job() -> None:
    hello()


def test_memory_logs_in_one_process(tmp_path) -> None:
    """The memory backend lives in one process: an in-process run and the reader share it."""
    config = {"backend_type": "memory", "local_dir": str(tmp_path / "capture")}
    manager = {"module": "dagster_remote_store", "class": "RemoteStoreComputeLogManager", "config": config}
    (tmp_path / "dagster.yaml").write_text(json.dumps({"compute_logs": manager}))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        result = hello_job.execute_in_process(instance=instance)
        assert result.success
        [data] = [
            event.logs_captured_data
            for event in result.all_events
            if event.event_type == DagsterEventType.LOGS_CAPTURED
        ]
        manager_ = instance.compute_log_manager
        log_key = manager_.build_log_key_for_run(result.run_id, data.file_key)
        shutil.rmtree(tmp_path / "capture", ignore_errors=True)
        assert manager_.get_log_data(log_key).stdout == b"hello from the memory store\n"
        assert manager_.get_log_keys_for_log_key_prefix([result.run_id, "compute_logs"], ComputeIOType.STDOUT) == [
            log_key
        ]
        manager_.delete_logs(prefix=[result.run_id])
        assert manager_.store.list() == []


def test_a_credential_written_as_text_in_dagster_yaml_is_warned_of(tmp_path) -> None:
    """The UI's instance configuration page shows dagster.yaml as written: `{env: VAR}` shows the
    variable's name, a literal shows the secret, so a literal is warned of when the instance loads."""
    require_server("s3")
    from_env = {**backend_options("s3", tmp_path), "key": {"env": "DRS_TEST_S3_KEY"}}
    literal = {**from_env, "secret": "literal-secret-text"}
    for options, warned in [(from_env, False), (literal, True)]:
        config = {"backend_type": "s3", "backend_options": options, "local_dir": str(tmp_path / "capture")}
        manager = {"module": "dagster_remote_store", "class": "RemoteStoreComputeLogManager", "config": config}
        (tmp_path / "dagster.yaml").write_text(json.dumps({"compute_logs": manager}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with DagsterInstance.from_config(str(tmp_path)) as instance:
                assert isinstance(instance.compute_log_manager, RemoteStoreComputeLogManager)
                shown = instance.info_str()
        messages = [str(w.message) for w in caught if "dagster.yaml" in str(w.message)]
        assert messages == (
            [
                "RemoteStoreComputeLogManager: backend option 'secret' is written as text in dagster.yaml, which "
                "the Dagster UI shows on its instance configuration page; give it as {env: VARIABLE}"
            ]
            if warned
            else []
        )
        assert ("literal-secret-text" in shown) == warned
        assert os.environ["DRS_TEST_S3_SECRET"] not in shown


def test_a_log_the_store_refuses_shows_why_not_that_it_is_missing(tmp_path) -> None:
    """Azurite checks the account key's signatures (the S3 test server accepts any credentials)."""
    options = {**backend_options("azure", tmp_path), "account_key": "V3JvbmctQXp1cmUtS2V5", "max_retries": 0}
    manager = RemoteStoreComputeLogManager("azure", options, local_dir=str(tmp_path / "capture"))
    try:
        read = manager.get_log_data(["run", "compute_logs", "step"])
        assert read.stdout is not None, "reported as a missing log"
        shown = read.stdout.decode()
        assert "cannot read this log from the store" in shown and "permission" in shown.lower(), shown
        assert "V3JvbmctQXp1cmUtS2V5" not in shown
        # Shown once: the UI asks again from where the last answer ended.
        again = manager.get_log_data(["run", "compute_logs", "step"], cursor=read.cursor)
        assert again.stdout is None
    finally:
        manager.dispose()


def test_config_errors_name_the_manager_and_the_option(tmp_path) -> None:
    with pytest.raises(InvalidConfig, match=r"RemoteStoreComputeLogManager.*unknown option \"bukket\""):
        RemoteStoreComputeLogManager("s3", {"bukket": "x"})
    with pytest.raises(InvalidConfig, match="RemoteStoreComputeLogManager: give backend_type="):
        RemoteStoreComputeLogManager()


def links_of_a_logged_step(kind: str, options: dict[str, Any], tmp_path: Path, line: bytes) -> tuple[str, str]:
    """The stdout and stderr download links the UI gets, with `show_url_only`, for a step that
    printed `line`, from a manager on `kind` with `options`; the stdout link serves `line`."""
    manager = RemoteStoreComputeLogManager(
        kind, options, root_path=f"tests/{uuid.uuid4().hex}", local_dir=str(tmp_path / "capture"), show_url_only=True
    )
    log_key = ["run", "compute_logs", "step"]
    try:
        # What the step prints lands in the captured file (pytest holds this process's stdout).
        captured = manager.local_manager.get_captured_local_path(log_key, "out")
        with manager.capture_logs(log_key) as context, open(captured, "ab") as out:
            out.write(line)
        assert context.external_stdout_url and context.external_stderr_url
        with urllib.request.urlopen(context.external_stdout_url, timeout=10) as answer:
            assert answer.read() == line
        assert "PRIVATE KEY" not in repr(manager) + repr(manager.store)
        return context.external_stdout_url, context.external_stderr_url
    finally:
        manager.dispose()


def test_show_url_only_points_the_ui_at_signed_urls(tmp_path) -> None:
    require_server("s3")
    stdout, _ = links_of_a_logged_step("s3", backend_options("s3", tmp_path), tmp_path, b"shown by a link\n")
    assert "X-Amz-Expires=3600" in stdout


def verify_gcs_v4_signature(url: str, public_key: Path) -> None:
    """Checks a GCS V4 signed URL (`GOOG4-RSA-SHA256`) against the key it claims, by Google's
    documented canonical request, with openssl: a URL signed by another key, or for another
    object or expiry, fails."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    signature = bytes.fromhex(query.pop("X-Goog-Signature")[0])
    quote = functools.partial(urllib.parse.quote, safe="-_.~")
    canonical_query = "&".join(f"{quote(k)}={quote(v[0])}" for k, v in sorted(query.items()))
    # Signed for GCS's own host, where such a link is used (the test server takes any signature).
    canonical = "\n".join(["GET", parts.path, canonical_query, f"host:{GCS_HOST}", "", "host", "UNSIGNED-PAYLOAD"])
    scope = query["X-Goog-Credential"][0].split("/", 1)[1]
    to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"][0], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    (public_key.parent / "signed").write_text(to_sign)
    (public_key.parent / "signature").write_bytes(signature)
    checked = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public_key), "-signature", "signature", "signed"],
        cwd=public_key.parent,
        capture_output=True,
        text=True,
    )
    assert checked.stdout.strip() == "Verified OK", (checked.stdout, checked.stderr)


def test_show_url_only_signs_gcs_links_with_the_service_accounts_key(tmp_path) -> None:
    """A service-account key signs GCS download links locally (no call to Google's signBlob)."""
    require_server("gcs")
    key, public_key = tmp_path / "sa.pem", tmp_path / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", public_key], check=True, capture_output=True)
    account = {
        "type": "service_account",
        "project_id": "tests",
        "private_key_id": "tests-key",
        "private_key": key.read_text(),
        "client_email": "logs@tests.iam.gserviceaccount.com",
    }
    (tmp_path / "sa.json").write_text(json.dumps(account))
    options = {**backend_options("gcs", tmp_path), "anonymous": False, "service_account": str(tmp_path / "sa.json")}
    url, _ = links_of_a_logged_step("gcs", options, tmp_path, b"shown by a signed link\n")
    assert "X-Goog-Expires=3600" in url and "logs%40tests.iam.gserviceaccount.com" in url, url
    verify_gcs_v4_signature(url, public_key)


@pytest.mark.parametrize("kind", ["local", *REMOTE])
def test_a_running_steps_log_goes_up_as_segments_of_what_it_gained(kind, tmp_path) -> None:
    options = backend_options(kind, tmp_path)
    writer = RemoteStoreComputeLogManager(kind, options, local_dir=str(tmp_path / "step"), prefix=f"t{uuid.uuid4()}")
    reader = RemoteStoreComputeLogManager(kind, options, local_dir=str(tmp_path / "ui"), prefix=writer._prefix)
    log_key = ["run", "compute_logs", "step"]
    captured = Path(writer.local_manager.get_captured_local_path(log_key, "out"))
    captured.parent.mkdir(parents=True)
    folder = writer._segments_folder(log_key, ComputeIOType.STDOUT)
    try:
        log = b""
        for lines in (b"first\n", b"", b"second\nthird\n", b"x" * (3 << 20)):
            log += lines
            captured.write_bytes(log)
            writer.upload_to_cloud_storage(log_key, ComputeIOType.STDOUT, partial=True)
            # The UI's machine reads the log so far; on each read it fetches only the new segments.
            assert reader.get_log_data(log_key).stdout == log
        sizes = sorted(writer.store.head(path).size for path in writer.store.list(folder))
        assert sizes == [6, 13, 3 << 20], "each upload carries only what the log gained"

        # A segment whose upload was repeated (its answer lost) is read once.
        writer.store.copy(writer.store.list(folder)[0], f"{folder}{0:020d}-{3:020d}")
        shown = tmp_path / "again"
        again = RemoteStoreComputeLogManager(kind, options, local_dir=str(shown), prefix=writer._prefix)
        try:
            assert again.get_log_data(log_key).stdout == log
        finally:
            again.dispose()

        captured.write_bytes(log + b"done\n")
        writer.upload_to_cloud_storage(log_key, ComputeIOType.STDOUT)
        assert writer.store.list(folder) == [], "the complete log replaces the segments"
        assert reader.get_log_data(log_key).stdout == log + b"done\n"
    finally:
        writer.delete_logs(log_key=log_key)
        writer.dispose()
        reader.dispose()
