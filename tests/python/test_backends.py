"""Backend construction from Python: credentials, the environment, insecure
settings that must be asked for, and secrets that never show."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from dagster_remote_store import InvalidConfig, NotFound, PermissionDenied, Store, Unavailable
from dagster_remote_store.backends import AzureBackend, GCSBackend, LocalBackend, S3Backend, SFTPBackend

from conftest import make_backend, require_server


def env(name: str) -> str:
    return os.environ[name]


def test_reprs_show_where_not_how() -> None:
    s3 = S3Backend("bucket", key="AKID", secret="S3-SECRET", token="S3-TOKEN", region_name="eu-west-1")
    assert repr(s3) == 'S3Backend(bucket="bucket", region_name="eu-west-1")'
    azure = AzureBackend("c", account_name="acct", account_key=base64.b64encode(b"AZURE-SECRET").decode())
    assert repr(azure) == 'AzureBackend(container="c", account_name="acct")'
    assert repr(GCSBackend("b", base_url="http://127.0.0.1:1", anonymous=True)) == (
        'GCSBackend(bucket="b", base_url="http://127.0.0.1:1")'
    )
    assert "S3-SECRET" not in repr(Store(s3)) and "S3-TOKEN" not in repr(Store(s3))


def test_bad_option_values_name_the_option() -> None:
    with pytest.raises(ValueError, match="connect_timeout must be a positive number of seconds, got -1"):
        S3Backend("b", connect_timeout=-1)
    with pytest.raises(ValueError, match="malformed SAS token") as err:
        AzureBackend("c", account_name="a", sas_token="sig=SECRET%ZZ")
    assert "SECRET" not in str(err.value)


def test_azure_credentials_come_from_the_environment(monkeypatch) -> None:
    require_server("azure")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", env("DRS_TEST_AZURE_ACCOUNT"))
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", env("DRS_TEST_AZURE_KEY"))
    root = f"tests/{uuid.uuid4().hex}"

    def store() -> Store:
        backend = AzureBackend(
            env("DRS_TEST_AZURE_CONTAINER"), account_url=env("DRS_TEST_AZURE_ENDPOINT"), allow_http=True
        )
        return Store(backend, root_path=root)

    store().write("from-env.txt", b"ok")
    assert store().read_bytes("from-env.txt") == b"ok"
    wrong = base64.b64encode(b"WRONG-KEY" * 7).decode()
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", wrong)
    with pytest.raises(PermissionDenied) as err:
        store().read_bytes("from-env.txt")
    assert wrong not in str(err.value)


def test_plain_http_must_be_asked_for() -> None:
    require_server("s3")
    backend = S3Backend(
        env("DRS_TEST_S3_BUCKET"),
        endpoint_url=env("DRS_TEST_S3_ENDPOINT"),
        key=env("DRS_TEST_S3_KEY"),
        secret=env("DRS_TEST_S3_SECRET"),
        region_name=env("DRS_TEST_S3_REGION"),
    )
    with pytest.raises(Exception, match="http"):
        Store(backend).read_bytes("anything")


@pytest.fixture
def sftp_env() -> None:
    require_server("sftp")


def sftp(**options) -> SFTPBackend:
    settings = {
        "port": int(env("DRS_TEST_SFTP_PORT")),
        "username": env("DRS_TEST_SFTP_USER"),
        "base_path": env("DRS_TEST_SFTP_ROOT"),
        **options,
    }
    return SFTPBackend(env("DRS_TEST_SFTP_HOST"), **settings)


def test_sftp_password_login_with_known_hosts(sftp_env) -> None:
    backend = sftp(password=env("DRS_TEST_SFTP_PASSWORD"), known_hosts=env("DRS_TEST_SFTP_KNOWN_HOSTS"))
    store = Store(backend, root_path=f"tests/{uuid.uuid4().hex}")
    store.write("hello.txt", b"over ssh")
    assert store.read_bytes("hello.txt") == b"over ssh"
    assert env("DRS_TEST_SFTP_PASSWORD") not in repr(backend) + repr(store) + store.uri("hello.txt")
    assert store.uri("hello.txt").startswith(f"sftp://{env('DRS_TEST_SFTP_USER')}@{env('DRS_TEST_SFTP_HOST')}:")


def test_sftp_host_key_mismatch_is_refused_naming_the_host(sftp_env) -> None:
    with pytest.raises(PermissionDenied) as err:
        sftp(private_key=env("DRS_TEST_SFTP_KEY"), host_key_fingerprint="SHA256:" + "A" * 43)
    assert f"{env('DRS_TEST_SFTP_HOST')}:{env('DRS_TEST_SFTP_PORT')}" in str(err.value)


def test_sftp_skipping_the_host_key_check_must_be_asked_for(sftp_env) -> None:
    backend = sftp(private_key=env("DRS_TEST_SFTP_KEY"), accept_any_host_key=True)
    assert backend.kind == "sftp"
    with pytest.raises(InvalidConfig, match="at most one of"):
        sftp(private_key=env("DRS_TEST_SFTP_KEY"), known_hosts="/x", accept_any_host_key=True)


def test_sftp_wrong_password_is_permission_denied_without_the_password(sftp_env) -> None:
    with pytest.raises(PermissionDenied) as err:
        sftp(password="not-the-password-0xC0FFEE", known_hosts=env("DRS_TEST_SFTP_KNOWN_HOSTS"), max_retries=0)
    assert "not-the-password-0xC0FFEE" not in str(err.value)


def test_sftp_takes_one_way_to_log_in() -> None:
    with pytest.raises(InvalidConfig, match="exactly one of password= or private_key="):
        SFTPBackend("127.0.0.1", username="u", base_path="/tmp")


def test_no_call_goes_through_a_link_leading_out_of_a_local_root(tmp_path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inside").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside")
    (root / "dirlink").symlink_to(outside)
    (root / "inlink").symlink_to(root / "inside")
    store = Store(LocalBackend(root=str(root)))
    calls = {
        "write": lambda: store.write("dirlink/a.txt", b"x"),
        "read": lambda: store.read_bytes("dirlink/secret.txt"),
        "delete": lambda: store.delete("dirlink/secret.txt"),
        "rename": lambda: store.rename("dirlink/secret.txt", "stolen.txt"),
        "list": lambda: store.list("dirlink"),
    }
    for name, call in calls.items():
        with pytest.raises(PermissionDenied, match="symbolic link leading outside the local root") as err:
            call()
        assert "dirlink" in str(err.value), name
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    store.write("inlink/b.txt", b"inside")
    assert (root / "inside" / "b.txt").read_bytes() == b"inside"
    assert store.list() == ["inlink/b.txt", "inside/b.txt"]


@pytest.mark.parametrize("kind", ["s3", "azure", "gcs"])
def test_a_write_to_a_missing_bucket_names_it(kind, tmp_path) -> None:
    missing = f"no-such-{uuid.uuid4().hex[:12]}"
    backend = make_backend(kind, tmp_path, bucket=missing)
    what = "container" if kind == "azure" else "bucket"
    with pytest.raises(NotFound, match=f'the {what} "{missing}" does not exist'):
        Store(backend).write("a/b.txt", b"x")


def test_explicit_credentials_win_over_the_environment(monkeypatch, tmp_path) -> None:
    require_server("gcs")
    require_server("azure")
    # Each would be taken, and fail, if the environment's credentials counted.
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT", str(tmp_path / "missing-service-account.json"))
    monkeypatch.setenv("AZURE_STORAGE_TOKEN", "not-a-bearer-token")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", base64.b64encode(b"WRONG-KEY" * 7).decode())
    root = f"tests/{uuid.uuid4().hex}"
    service_account = json.dumps(
        {
            "gcs_base_url": env("DRS_TEST_GCS_URL"),
            "disable_oauth": True,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        }
    )
    backends = [
        GCSBackend(
            env("DRS_TEST_GCS_BUCKET"),
            service_account=service_account,
            base_url=env("DRS_TEST_GCS_URL"),
            allow_http=True,
        ),
        GCSBackend(env("DRS_TEST_GCS_BUCKET"), base_url=env("DRS_TEST_GCS_URL"), anonymous=True, allow_http=True),
        AzureBackend(
            env("DRS_TEST_AZURE_CONTAINER"),
            account_name=env("DRS_TEST_AZURE_ACCOUNT"),
            account_key=env("DRS_TEST_AZURE_KEY"),
            account_url=env("DRS_TEST_AZURE_ENDPOINT"),
            allow_http=True,
        ),
    ]
    for backend in backends:
        store = Store(backend, root_path=root)
        store.write("explicit.txt", b"ok")
        assert store.read_bytes("explicit.txt") == b"ok", repr(backend)


@pytest.fixture
def private_s3():
    """A moto server of this test's own, so that it can be stopped: yields its process and endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the private moto server did not start")
                time.sleep(0.1)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/silent", method="PUT"), timeout=5).close()
        yield server, endpoint
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait()


def test_a_server_that_stops_answering_fails_calls_within_the_read_timeout(private_s3) -> None:
    require_server("s3")  # moto comes with the S3 test server's requirements
    server, endpoint = private_s3
    backend = S3Backend(
        "silent",
        endpoint_url=endpoint,
        key="k",
        secret="s",
        region_name="us-east-1",
        allow_http=True,
        read_timeout=1.0,
        retry_timeout=1.5,
        max_retries=3,
    )
    store = Store(backend)
    store.write("small.bin", b"x" * 1000)
    store.write("large.bin", b"y" * (20 << 20))
    server.send_signal(signal.SIGSTOP)
    calls = {
        "read": lambda: store.read_bytes("small.bin"),
        "large read": lambda: store.read_bytes("large.bin"),
        "write": lambda: store.write("new.bin", b"z"),
        "part-sized write": lambda: store.write("new.bin", b"z" * (8 << 20)),
        "list": lambda: store.list(),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(Unavailable):
            call()
        # Two attempts of 1 s: the retry starts within the 1.5 s retry timeout, a third would not.
        assert time.monotonic() - started < 6, name
    server.send_signal(signal.SIGCONT)
    assert store.read_bytes("small.bin") == b"x" * 1000, "the same Store works once the server answers again"


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_signed_urls_read_the_object_without_credentials(kind, tmp_path) -> None:
    with Store(make_backend(kind, tmp_path), root_path=f"tests/{uuid.uuid4().hex}") as store:
        store.write("logs/step.out", b"signed for you")
        url = store.signed_url("logs/step.out", 600)
        assert url is not None and url.startswith("http://127.0.0.1")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read() == b"signed for you"
        if kind == "azure":  # Azurite checks signatures (moto accepts any)
            # A URL signed for one object does not read another.
            store.write("logs/step.err", b"not signed for")
            other = url.replace("logs/step.out", "logs/step.err")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(other, timeout=10)
            assert refused.value.code == 403


def test_backends_that_cannot_sign_give_no_url(tmp_path) -> None:
    for backend in (LocalBackend(root=str(tmp_path)), make_backend("memory", tmp_path)):
        with Store(backend) as store:
            store.write("a.txt", b"x")
            assert store.signed_url("a.txt", 60) is None
