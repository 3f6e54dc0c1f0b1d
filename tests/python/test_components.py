"""Dagster Components: the store resource and IO managers from a project's defs.yaml, loaded
as Dagster loads a project's defs folder, then used by a real materialization."""

import importlib.metadata
import os
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dagster_remote_store import InvalidConfig, Store
from dagster_remote_store.backends import LocalBackend

from conftest import BACKENDS

pytestmark = pytest.mark.skipif(not hasattr(dg, "Component"), reason="Components need dagster 1.12 or newer")

IO_MANAGERS = "dagster_remote_store.components.RemoteStoreIOManagers"
RESOURCE = "dagster_remote_store.components.RemoteStoreResource"


def load(component_type: str, attributes: dict, monkeypatch=None) -> dg.Definitions:
    """The definitions of one component, written to a defs.yaml in a new project's defs folder
    and loaded from there."""
    from dagster.components.testing import create_defs_folder_sandbox

    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / "storage"
        folder.mkdir(parents=True)
        (folder / "defs.yaml").write_text(yaml.safe_dump({"type": component_type, "attributes": attributes}))
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_, defs):
            return defs


def test_io_managers_on_one_store_store_each_output_with_its_serializer(tmp_path) -> None:
    import polars as pl

    root = tmp_path / "lake"
    root.mkdir()
    attributes = {
        "backend_type": "local",
        "backend_options": {"root": str(root)},
        "io_managers": {"io_manager": "pickle", "tables": "parquet"},
    }
    defs = load(IO_MANAGERS, attributes)

    @dg.asset(io_manager_key="tables")
    def orders() -> pl.DataFrame:
        return pl.DataFrame({"id": [1, 2, 3]})

    @dg.asset
    def order_count(orders: pl.DataFrame) -> int:
        return orders.height

    resources = defs.resources or {}
    assert sorted(resources) == ["io_manager", "tables"]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([orders, order_count], resources=resources, instance=instance)
    assert result.success and result.output_for_node("order_count") == 3
    with Store(LocalBackend(root=str(root))) as store:
        stored = sorted(path for path in store.list() if ".checksums/" not in path)
    assert stored == ["order_count.pkl", "orders.parquet"]


def test_the_store_resource_component_gives_assets_the_store(tmp_path) -> None:
    defs = load(RESOURCE, {"backend_type": "memory", "resource_key": "lake"})

    @dg.asset
    def written(lake: dg.ResourceParam[object]) -> int:
        store = lake.get_store()  # type: ignore[attr-defined]
        store.write("a.txt", b"abc")
        return len(store.read_bytes("a.txt"))

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([written], resources=defs.resources or {}, instance=instance)
    assert result.output_for_node("written") == 3


def load_error(component_type: str, attributes: dict) -> InvalidConfig:
    """The InvalidConfig behind the error Dagster raises for a component that does not load."""
    with pytest.raises(Exception) as raised:
        load(component_type, attributes)
    chain, error = [], raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    [invalid] = [error for error in chain if isinstance(error, InvalidConfig)]
    return invalid


def test_a_misspelt_option_fails_when_the_definitions_load_naming_the_accepted_ones() -> None:
    invalid = load_error(IO_MANAGERS, {"backend_type": "s3", "backend_options": {"bukket": "lake"}})
    assert 'unknown option "bukket"' in str(invalid) and "bucket, connect_timeout" in str(invalid), invalid
    invalid = load_error(IO_MANAGERS, {"io_managers": {"io_manager": "pickle"}})
    assert str(invalid).startswith("RemoteStoreIOManagers: give backend_type"), invalid


def test_credentials_by_name_pass_the_check_without_their_variable_and_stay_names(monkeypatch) -> None:
    monkeypatch.delenv("DRS_COMPONENT_SECRET", raising=False)
    options = {"bucket": "lake", "key": {"env": "DRS_COMPONENT_KEY"}, "secret": {"env": "DRS_COMPONENT_SECRET"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = load(IO_MANAGERS, {"backend_type": "s3", "backend_options": options})
    assert [str(w.message) for w in caught if "written as text" in str(w.message)] == []
    manager = (defs.resources or {})["io_manager"]
    assert manager.backend_options["secret"] == {"env": "DRS_COMPONENT_SECRET"}


@pytest.mark.parametrize("given", ["literal-secret-text", "{{ env.DRS_COMPONENT_SECRET }}"])
def test_a_credential_written_as_text_or_through_a_template_is_warned_of(given: str, monkeypatch) -> None:
    monkeypatch.setenv("DRS_COMPONENT_SECRET", "literal-secret-text")
    options = {"bucket": "lake", "key": {"env": "DRS_COMPONENT_KEY"}, "secret": given}
    with pytest.warns(UserWarning, match=r"backend option 'secret' is written as text in defs.yaml"):
        defs = load(IO_MANAGERS, {"backend_type": "s3", "backend_options": options})
    # What Dagster then shows: the secret itself.
    assert (defs.resources or {})["io_manager"].backend_options["secret"] == "literal-secret-text"


def test_dg_finds_the_components_through_the_entry_point() -> None:
    entries = importlib.metadata.entry_points(group="dagster_dg_cli.registry_modules")
    [entry] = [entry for entry in entries if entry.name == "dagster_remote_store"]
    module = entry.load()
    assert {"RemoteStoreIOManagers", "RemoteStoreResource"} <= set(module.__all__)
    assert all(issubclass(getattr(module, name), dg.Component) for name in module.__all__)
    assert Path(module.__file__).name == "components.py" and os.path.exists(module.__file__)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_scaffolded_defs_yaml_lists_the_options_and_loads_once_filled_in(backend: str) -> None:
    from dagster.components.testing import create_defs_folder_sandbox

    from dagster_remote_store.components import RemoteStoreIOManagers

    # SFTP takes a password or a private key, not both; scaffolded, it has every credential.
    params = {"backend_type": backend, **({"credentials": ["private_key"]} if backend == "sftp" else {})}
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.scaffold_component(RemoteStoreIOManagers, defs_path="storage", scaffold_params=params)
        text = (folder / "defs.yaml").read_text()
        doc = yaml.safe_load(text)
        assert doc["type"] == IO_MANAGERS and doc["attributes"]["backend_type"] == backend
        options = doc["attributes"].get("backend_options", {})
        variables = [value["env"] for value in options.values() if isinstance(value, dict)]
        assert doc.get("requirements", {}).get("env", []) == variables
        assert all(variable.startswith(f"{backend.upper()}_") for variable in variables)

        # The options as the registry's error for an unknown one names them, its aliases (last) aside.
        comment = " ".join(line.removeprefix("  # ") for line in text.splitlines() if line.startswith("  # "))
        written = comment.partition(f"Options of {backend}: ")[2].partition(".")[0]
        invalid = load_error(IO_MANAGERS, {"backend_type": backend, "backend_options": {"?": None}})
        assert str(invalid).partition(f"accepted for {backend}: ")[2].startswith(written), text

        # Required options are left empty; filled in, the file loads, the credentials' variables unset.
        doc["attributes"]["backend_options"] = {key: value or "x" for key, value in options.items()}
        (folder / "defs.yaml").write_text(yaml.safe_dump(doc))
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_, defs):
            assert sorted(defs.resources or {}) == ["io_manager"]


def test_scaffolding_names_the_accepted_backend_types_and_credentials() -> None:
    from dagster.components.testing import create_defs_folder_sandbox

    from dagster_remote_store.components import RemoteStoreResource

    with create_defs_folder_sandbox() as sandbox:
        with pytest.raises(InvalidConfig, match=r'unknown type "s4"; accepted: local, memory, s3, azure, gcs, sftp'):
            sandbox.scaffold_component(RemoteStoreResource, scaffold_params={"backend_type": "s4"})
        with pytest.raises(InvalidConfig, match=r"--credentials bucket: not a credential of gcs, .*: service_account"):
            sandbox.scaffold_component(
                RemoteStoreResource, scaffold_params={"backend_type": "gcs", "credentials": ["bucket"]}
            )
        folder = sandbox.scaffold_component(
            RemoteStoreResource, scaffold_params={"backend_type": "s3", "env_prefix": "lake"}
        )
        doc = yaml.safe_load((folder / "defs.yaml").read_text())
    assert doc["attributes"]["resource_key"] == "store"
    assert doc["requirements"] == {"env": ["LAKE_KEY", "LAKE_SECRET", "LAKE_TOKEN"]}
