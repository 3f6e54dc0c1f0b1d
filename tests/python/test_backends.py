"""Backend construction from Python: credentials, the environment, insecure
settings that must be asked for, and secrets that never show."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from conftest import require_server
from dagster_remote_store import InvalidConfig, PermissionDenied, Store
from dagster_remote_store.backends import AzureBackend, GCSBackend, S3Backend, SFTPBackend


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
