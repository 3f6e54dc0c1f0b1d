"""Credentials never show: not in a repr, a log line, an event, metadata or an error."""

from __future__ import annotations

import logging
import os
import uuid

import pytest
from dagster import EnvVar, asset, materialize
from dagster._serdes import serialize_value

from dagster_remote_store import DagsterStoreResource, InvalidConfig, Registry, RemoteStoreIOManager, Secret, Store
from dagster_remote_store._core import redact_secrets
from dagster_remote_store.backends import AzureBackend, GCSBackend, S3Backend

from conftest import require_server

SECRET = "s3cr3t-" + uuid.uuid4().hex
NESTED = "n3st3d-" + uuid.uuid4().hex


def assert_hidden(text: str, where: str) -> None:
    for secret in (SECRET, NESTED):
        assert secret not in text, f"a secret showed in {where}: {text[:2000]}"


def test_secret_values_print_as_stars() -> None:
    secret = Secret(SECRET)
    assert repr(secret) == "Secret('***')" and str(secret) == "***"
    assert secret.reveal() == SECRET
    options = {"bucket": "b", "secret": SECRET, "client": {"password": NESTED, "items": [{"token": NESTED}]}}
    shown = redact_secrets(options)
    assert shown == {"bucket": "b", "secret": "***", "client": {"password": "***", "items": [{"token": "***"}]}}
    assert options["secret"] == SECRET, "the caller's dict is left as it was"


def test_reprs_of_resources_and_registries_hide_credentials(tmp_path) -> None:
    options = {"root": str(tmp_path), "secret_token": SECRET, "nested": {"password": NESTED}}
    resource = DagsterStoreResource(backend_type="local", backend_options=options)
    io = RemoteStoreIOManager(store_resource=resource)
    for shown in (repr(resource), str(resource), repr(io), str(io)):
        assert_hidden(shown, "a repr")
    registry = Registry({"backends": {"b": {"type": "memory", "options": {}}}, "stores": {"s": {"backend": "b"}}})
    assert_hidden(repr(registry), "a registry repr")


def test_reprs_show_urls_without_user_password_or_query_string() -> None:
    s3 = S3Backend("b", endpoint_url=f"https://user:{SECRET}@s3.example.org/?X-Amz-Signature={NESTED}")
    azure = AzureBackend("c", account_name="a", account_url=f"https://a.blob.core.windows.net/?sv=2022&sig={SECRET}")
    gcs = GCSBackend("b", base_url=f"https://{SECRET}@gcs.example.org", anonymous=True)
    registry = Registry(
        {
            "backends": {"lake": {"type": "s3", "options": {"bucket": "b", "endpoint_url": f"http://u:{SECRET}@h/?sig={NESTED}"}}},
            "stores": {"s": {"backend": "lake"}},
        }
    )
    shown = [repr(s3), repr(Store(s3)), repr(azure), repr(Store(azure)), repr(gcs), repr(registry.get_store("s"))]
    for text in shown:
        assert_hidden(text, "a repr")
    assert shown[:3] == [
        'S3Backend(bucket="b", endpoint_url="https://<redacted>@s3.example.org/?<redacted>")',
        'Store(S3Backend(bucket="b", endpoint_url="https://<redacted>@s3.example.org/?<redacted>"), root_path="")',
        'AzureBackend(container="c", account_name="a", account_url="https://a.blob.core.windows.net/?<redacted>")',
    ]


def test_config_errors_next_to_a_secret_do_not_echo_it(tmp_path) -> None:
    bad = [
        {"type": "s3", "options": {"bucket": "b", "secret": SECRET, "retries": 3}},
        {"type": "s3", "options": {"bucket": "b", "secret": {"deep": NESTED}}},
        {"type": "s3", "options": {"bucket": "b", "key": 12345, "secret": SECRET}},
        {
            "type": "sftp",
            "options": {"host": "h", "username": "u", "base_path": "/", "password": SECRET, "private_key": NESTED},
        },
    ]
    for backend in bad:
        with pytest.raises(InvalidConfig) as raised:
            Registry({"backends": {"b": backend}, "stores": {"s": {"backend": "b"}}}).get_store("s")
        assert_hidden(str(raised.value) + repr(raised.value), "a config error")


def test_a_run_with_secrets_shows_none_of_them(instance, capfd, caplog) -> None:
    require_server("s3")
    env = os.environ.get
    os.environ["DRS_TEST_SECRET_KEY_ID"] = env("DRS_TEST_S3_KEY")
    # moto accepts any secret, so a known string can stand for the real one.
    os.environ["DRS_TEST_SECRET_VALUE"] = SECRET
    caplog.set_level(logging.DEBUG)

    @asset
    def upstream() -> dict:
        return {"rows": [1, 2]}

    @asset
    def downstream(upstream: dict) -> int:
        return len(upstream["rows"])

    @asset
    def broken(upstream: dict) -> int:
        raise ValueError("the asset failed")

    io = RemoteStoreIOManager(
        store_resource=DagsterStoreResource(
            backend_type="s3",
            backend_options={
                "bucket": env("DRS_TEST_S3_BUCKET"),
                "endpoint_url": env("DRS_TEST_S3_ENDPOINT"),
                "key": EnvVar("DRS_TEST_SECRET_KEY_ID"),
                "secret": EnvVar("DRS_TEST_SECRET_VALUE"),
                "region_name": env("DRS_TEST_S3_REGION"),
                "allow_http": True,
                "token": NESTED,
            },
            root_path=f"tests/{uuid.uuid4().hex}",
        ),
    )
    result = materialize(
        [upstream, downstream, broken], resources={"io_manager": io}, instance=instance, raise_on_error=False
    )
    assert not result.success and result.output_for_node("downstream") == 2

    records = instance.all_logs(result.run_id)
    assert records, "the run logged events"
    for record in records:
        assert_hidden(serialize_value(record), "an event record")
        assert_hidden(record.user_message or "", "a log message")
    for event in result.all_events:
        for value in (event.event_specific_data, event.message):
            assert_hidden(repr(value), "an event")
    for materialization in result.asset_materializations_for_node("upstream"):
        assert_hidden(repr(materialization.metadata), "output metadata")
    captured = capfd.readouterr()
    assert_hidden(captured.out + captured.err, "stdout/stderr")
    assert_hidden("\n".join(r.getMessage() for r in caplog.records), "Python logging")
    run = instance.get_run_by_id(result.run_id)
    assert_hidden(serialize_value(run), "the stored run")
    assert_hidden(repr(io), "the IO manager's repr")
