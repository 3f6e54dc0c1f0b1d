"""The Components through the real `dg` CLI, as a user meets them: `create-dagster project`,
`dg list components`, `dg scaffold defs`, `dg check defs` and `dg launch`, each in its own
process, then the resource page's GraphQL.

Each dg call costs seconds, so the scaffold-check-launch flow runs on two backends only: local
(always) and S3 (its test server; the other remote backends share the same component code).
Runs use the in-process executor: step processes are test_cli.py's subject. The project comes
from `create-dagster project --no-uv-sync`, which needs neither uv nor the network, and is not
installed: dg is pointed at its `src`. The module needs `dg` and `create-dagster` beside the
interpreter, which the oldest venv (dagster 1.9, no Components) does not have.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dagster_remote_store import ParquetSerializer, PickleSerializer, Store

from conftest import make_backend, require_server, stored

BIN = Path(sys.executable).parent
IO_MANAGERS = "dagster_remote_store.components.RemoteStoreIOManagers"
RESOURCE = "dagster_remote_store.components.RemoteStoreResource"
DEFS_YAML = Path("src/lake/defs/storage/defs.yaml")
# A run's steps in its own process, which `dg launch` is.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})
ASSETS = """import dagster as dg
import polars as pl


@dg.asset(io_manager_key="tables")
def orders() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2, 3]})


@dg.asset
def order_count(orders: pl.DataFrame) -> int:
    return orders.height
"""


@pytest.fixture(scope="module", autouse=True)
def dg_installed() -> None:
    if (BIN / "dg").exists() and (BIN / "create-dagster").exists():
        return
    reason = f"no dg beside {sys.executable}: install dagster-dg-cli and create-dagster (tests/python/requirements.txt)"
    if os.environ.get("CI") == "true" and hasattr(dg, "Component"):
        pytest.fail(reason)
    pytest.skip(reason)


def run(tool: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tool` from this venv, with no terminal to prompt on and without dg's network calls."""
    quiet = {"DAGSTER_DG_UPDATE_CHECK_ENABLED": "0", "DAGSTER_DISABLE_TELEMETRY": "1"}
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=cwd,
        env={**os.environ, **quiet, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a call that must succeed."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def new_project(folder: Path) -> Path:
    """A project from `create-dagster`, not installed: dg loads it from its folder."""
    succeeded(run("create-dagster", "project", "lake", "--no-uv-sync", cwd=folder))
    return folder / "lake"


@dataclass
class Project:
    path: Path
    backend: str
    root_path: str
    scaffolded: str
    # What dg needs here: DAGSTER_HOME and the credentials' variables.
    env: dict[str, str]

    def defs_yaml(self) -> Path:
        return self.path / DEFS_YAML

    def copy(self, folder: Path) -> Project:
        """The project at `folder / "lake"`, to change without touching this one."""
        shutil.copytree(self.path, folder / "lake")
        return Project(folder / "lake", self.backend, self.root_path, self.scaffolded, self.env)

    def launch(self, *args: str) -> subprocess.CompletedProcess[str]:
        # Not installed, so dg is told where the definitions are.
        return run("dg", "launch", *args, "-m", "lake.definitions", "-d", "src", cwd=self.path, env=self.env)


@pytest.fixture(scope="module", params=["local", "s3"])
def project(request, tmp_path_factory) -> Project:
    """A new project with the IO managers scaffolded, then filled in for the backend's test
    server, and two assets: one pickled, one stored as Parquet under a second resource key."""
    backend = request.param
    if backend != "local":
        require_server(backend)
    folder = tmp_path_factory.mktemp(backend)
    path = new_project(folder)
    credentials = ["--credentials", "key", "--credentials", "secret"] if backend == "s3" else []
    succeeded(run("dg", "scaffold", "defs", IO_MANAGERS, "storage", "--backend-type", backend, *credentials, cwd=path))
    (folder / "home").mkdir()
    env = {"DAGSTER_HOME": str(folder / "home")}
    project = Project(path, backend, f"tests/dg-{uuid.uuid4().hex}", (path / DEFS_YAML).read_text(), env)

    doc = yaml.safe_load(project.scaffolded)
    attributes = doc["attributes"]
    if backend == "local":
        attributes["backend_options"]["root"] = str(folder / "store")
    else:
        attributes["backend_options"].update(
            bucket=os.environ["DRS_TEST_S3_BUCKET"],
            endpoint_url=os.environ["DRS_TEST_S3_ENDPOINT"],
            region_name=os.environ["DRS_TEST_S3_REGION"],
            allow_http=True,
        )
        env |= {"S3_KEY": os.environ["DRS_TEST_S3_KEY"], "S3_SECRET": os.environ["DRS_TEST_S3_SECRET"]}
    attributes["root_path"] = project.root_path
    attributes["io_managers"]["tables"] = "parquet"
    project.defs_yaml().write_text(yaml.safe_dump(doc, sort_keys=False))
    (path / "src" / "lake" / "defs" / "assets.py").write_text(ASSETS)
    return project


def test_dg_lists_the_components_of_the_installed_package(tmp_path) -> None:
    path = new_project(tmp_path)
    listed = json.loads(succeeded(run("dg", "list", "components", "--json", cwd=path)))
    keys = {item["key"] for item in listed["items"]}
    assert {IO_MANAGERS, RESOURCE} <= keys, keys


def test_dg_scaffold_writes_the_options_to_fill_and_the_credentials_variables(project) -> None:
    doc = yaml.safe_load(project.scaffolded)
    assert doc["type"] == IO_MANAGERS
    assert doc["attributes"]["backend_type"] == project.backend
    assert doc["attributes"]["io_managers"] == {"io_manager": "pickle"}
    if project.backend == "local":
        assert doc["attributes"]["backend_options"] == {"root": None}
        assert "requirements" not in doc
        assert "# Options of local: fsync, root." in project.scaffolded
    else:
        options = {"bucket": None, "key": {"env": "S3_KEY"}, "secret": {"env": "S3_SECRET"}}
        assert doc["attributes"]["backend_options"] == options
        assert doc["requirements"] == {"env": ["S3_KEY", "S3_SECRET"]}
        assert "# Options of s3: allow_http, bucket, connect_timeout, endpoint_url, key," in project.scaffolded


def test_dg_check_defs_passes(project) -> None:
    output = succeeded(run("dg", "check", "defs", cwd=project.path, env=project.env))
    assert "All definitions loaded successfully." in output


def test_dg_launch_stores_each_asset_with_its_serializer(project) -> None:
    succeeded(project.launch("--assets", "orders,order_count", "--config-json", IN_PROCESS))
    with Store(make_backend(project.backend, project.path.parent), root_path=project.root_path) as store:
        assert stored(store) == ["order_count.pkl", "orders.parquet"]
        assert PickleSerializer().load(store, "order_count.pkl") == 3
        assert ParquetSerializer().deserialize(store.read_bytes("orders.parquet"))["id"].to_list() == [1, 2, 3]


@pytest.mark.parametrize("project", ["local"], indirect=True)
def test_dg_check_defs_fails_on_a_misspelt_option_naming_the_accepted_ones(project, tmp_path) -> None:
    misspelt = project.copy(tmp_path)
    text = misspelt.defs_yaml().read_text()
    misspelt.defs_yaml().write_text(text.replace("    root:", "    roott:"))
    checked = run("dg", "check", "defs", cwd=misspelt.path, env=misspelt.env)
    output = checked.stdout + checked.stderr
    assert checked.returncode != 0, output
    assert 'unknown option "roott"; accepted for local: fsync, root' in output, output[-5000:]


@pytest.mark.parametrize("project", ["s3"], indirect=True)
def test_the_resource_page_shows_a_credentials_variable_never_its_value(project, monkeypatch) -> None:
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    # Values found nowhere else: loading reads no credential, so any will do.
    secrets = {"S3_KEY": f"key-{uuid.uuid4().hex}", "S3_SECRET": f"secret-{uuid.uuid4().hex}"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    workspace = project.path / "workspace.yaml"
    location = {
        "module_name": "lake.definitions",
        "working_directory": str(project.path / "src"),
        "location_name": "lake",
    }
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    query = """
        query ($selector: ResourceSelector!) {
          topLevelResourceDetailsOrError(resourceSelector: $selector) {
            __typename
            ... on ResourceDetails { configuredValues { key value type } }
            ... on PythonError { message }
          }
        }
    """
    selector = {"repositoryLocationName": "lake", "repositoryName": "__repository__", "resourceName": "io_manager"}
    with dg.instance_for_test() as instance, define_out_of_process_context(str(workspace), None, instance) as context:
        result = execute_dagster_graphql(context, query, {"selector": selector})
    details = result.data["topLevelResourceDetailsOrError"]
    assert details["__typename"] == "ResourceDetails", details
    shown = {value["key"]: value for value in details["configuredValues"]}
    options = json.loads(shown["backend_options"]["value"])
    assert options["key"] == {"env": "S3_KEY"} and options["secret"] == {"env": "S3_SECRET"}
    # Inside backend_options, not a field of its own: no "Env var" tag on the page.
    assert shown["backend_options"]["type"] == "VALUE"
    page = json.dumps(result.data)
    assert not [name for name, value in secrets.items() if value in page]


@pytest.mark.parametrize("project", ["s3"], indirect=True)
def test_a_templated_credential_is_warned_of_when_dg_loads_it(project, tmp_path) -> None:
    templated = project.copy(tmp_path)
    doc = yaml.safe_load(templated.defs_yaml().read_text())
    doc["attributes"]["backend_options"]["secret"] = "{{ env.S3_SECRET }}"
    templated.defs_yaml().write_text(yaml.safe_dump(doc, sort_keys=False))
    # `dg check defs` (dagster 1.13) drops Python warnings; `dg launch` shows them.
    output = succeeded(templated.launch("--assets", "orders", "--config-json", IN_PROCESS))
    assert "backend option 'secret' is written as text in defs.yaml (or by a {{ env.X }} template)" in output
    leaked = templated.env["S3_SECRET"] in output
    assert not leaked, "the secret's value is in dg's output"
