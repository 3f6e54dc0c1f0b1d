"""A project run through the `dagster` CLI with the multiprocess executor: each
step process builds its store from config. `DRS_CLI_BACKEND` picks how:

- `local`: `RemoteStoreIOManager` with inline backend fields from `EnvVar`s;
- `s3`: a profile of the registry file at `$DRS_CLI_REGISTRY`;
- `sftp`: a `DagsterStoreResource` the IO manager and an asset share.
"""

import os

from dagster import AssetIn, DailyPartitionsDefinition, Definitions, EnvVar, asset, multiprocess_executor

from dagster_remote_store import DagsterStoreResource, RemoteStoreIOManager

DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03")


@asset
def raw() -> list[dict]:
    return [{"day": f"2026-01-0{1 + i % 2}", "n": i} for i in range(10)]


@asset(partitions_def=DAYS)
def daily(context, raw: list[dict]) -> list[int]:
    return [row["n"] for row in raw if row["day"] == context.partition_key]


@asset(ins={"daily": AssetIn()})
def summary(daily: dict[str, list[int]]) -> dict[str, int]:
    return {day: sum(values) for day, values in daily.items()}


@asset
def pid_of_summary_step(summary: dict[str, int]) -> int:
    return os.getpid()


def io_manager() -> RemoteStoreIOManager:
    backend = os.environ.get("DRS_CLI_BACKEND", "local")
    root_path = EnvVar("DRS_CLI_ROOT_PATH")
    if backend == "local":
        return RemoteStoreIOManager(
            backend_type="local", backend_options={"root": EnvVar("DRS_CLI_ROOT")}, root_path=root_path
        )
    if backend == "s3":
        return RemoteStoreIOManager(profile="cli", registry_path=EnvVar("DRS_CLI_REGISTRY"), root_path=root_path)
    if backend == "sftp":
        options = {
            "host": EnvVar("DRS_TEST_SFTP_HOST"),
            "port": EnvVar("DRS_TEST_SFTP_PORT"),
            "username": EnvVar("DRS_TEST_SFTP_USER"),
            "password": EnvVar("DRS_TEST_SFTP_PASSWORD"),
            "known_hosts": EnvVar("DRS_TEST_SFTP_KNOWN_HOSTS"),
            "base_path": EnvVar("DRS_TEST_SFTP_ROOT"),
        }
        return RemoteStoreIOManager(
            store_resource=DagsterStoreResource(backend_type="sftp", backend_options=options, root_path=root_path)
        )
    raise ValueError(f"DRS_CLI_BACKEND={backend!r}")


defs = Definitions(
    assets=[raw, daily, summary, pid_of_summary_step],
    resources={"io_manager": io_manager()},
    executor=multiprocess_executor,
)
