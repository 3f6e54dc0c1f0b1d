"""Output metadata as users see it in the Dagster UI: column types as the writing library names
them, `size_bytes`, `dagster/uri` without credentials, and the storage kinds of assets, checked
on the materializations of real runs and, where dagster-graphql is installed, through the UI's
own GraphQL API."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import yaml
from dagster import (
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    EnvVar,
    FilesystemIOManager,
    MaterializeResult,
    SourceAsset,
    __version__ as dagster_version,
    asset,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from dagster_remote_store import (
    DagsterStoreResource,
    RemoteStoreIOManager,
    Store,
    dagster_dataset_io_manager,
    remote_store_io_manager,
    with_storage_kinds,
)
from dagster_remote_store.backends import LocalBackend

from conftest import make_backend, require_server

AT = [datetime(2026, 1, 1, 12, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)]
# pandas 3 names its string dtype `str`; earlier pandas keep strings as `object`.
PANDAS_STR = "str" if int(pd.__version__.split(".")[0]) >= 3 else "object"
POLARS_COLUMNS = [("id", "Int64"), ("name", "String"), ("at", "Datetime(time_unit='ns', time_zone='UTC')")]
PYARROW_COLUMNS = [("id", "int64"), ("name", "string"), ("at", "timestamp[ns, tz=UTC]")]
COLUMNS = {
    # The index, not a range, is stored after the columns under its name.
    "pandas_table": [
        ("id", "int64"),
        ("name", PANDAS_STR),
        ("at", "datetime64[ns, UTC]"),
        ("size", "category"),
        ("key", PANDAS_STR),
    ],
    "polars_table": POLARS_COLUMNS,
    "polars_lazy": POLARS_COLUMNS,
    "pyarrow_table": PYARROW_COLUMNS,
    "arrow_reader": PYARROW_COLUMNS,
    # A table of no known library: pyarrow's names of the stored types (seconds are stored as ms).
    "arrow_stream": [("id", "int64"), ("name", "string"), ("at", "timestamp[ms, tz=UTC]")],
}
# Credentials of the test servers, none of which may show in any metadata.
SECRETS = ["DRS_TEST_S3_KEY", "DRS_TEST_S3_SECRET", "DRS_TEST_AZURE_KEY", "DRS_TEST_SFTP_PASSWORD", "DRS_TEST_SFTP_KEY"]


def pyarrow_frame(unit: str = "ns") -> pa.Table:
    at = pa.array(AT, pa.timestamp(unit, tz="UTC"))
    return pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["ada", "grace"], "at": at})


class ArrowStream:
    """A table that only offers the Arrow PyCapsule stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


@asset(io_manager_key="tables")
def pandas_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([1, 2], dtype="int64"),
            "name": ["ada", "grace"],
            "at": pd.Series(AT).astype("datetime64[ns, UTC]"),
            "size": pd.Categorical(["s", "m"]),
        },
        index=pd.Index(["a", "b"], name="key"),
    )


@asset(io_manager_key="tables")
def polars_table() -> pl.DataFrame:
    frame = {"id": [1, 2], "name": ["ada", "grace"], "at": AT}
    return pl.DataFrame(frame, schema_overrides={"at": pl.Datetime("ns", "UTC")})


@asset(io_manager_key="tables")
def polars_lazy() -> pl.LazyFrame:
    return polars_table().lazy()


@asset(io_manager_key="tables")
def pyarrow_table() -> pa.Table:
    return pyarrow_frame()


@asset(io_manager_key="tables")
def arrow_reader() -> pa.RecordBatchReader:
    return pyarrow_frame().to_reader()


@asset(io_manager_key="tables")
def arrow_stream() -> ArrowStream:
    return ArrowStream(pyarrow_frame("s"))


@asset
def counts() -> dict:
    return {"rows": [1, 2, 3]}


TABLES = [pandas_table, polars_table, polars_lazy, pyarrow_table, arrow_reader, arrow_stream]


def definitions(backend_type: str, backend_options: dict[str, Any], root_path: str) -> Definitions:
    """The assets above, pickles and tables on one store configured as Dagster config."""
    store = {"backend_type": backend_type, "backend_options": backend_options, "root_path": root_path}
    resources = {
        "io_manager": RemoteStoreIOManager(**store),
        "tables": RemoteStoreIOManager(**store, serializer="parquet"),
    }
    return Definitions(assets=[*TABLES, counts], resources=resources)


def expected_uri(store: Store, tmp_path: Path, path: str) -> str:
    """The URI of `path` in a store of conftest's `make_store`, written out by hand per backend."""
    env = os.environ.__getitem__
    key = f"{store.root_path}/{path}"
    kind = store.backend.kind
    if kind == "local":
        return f"file://{(tmp_path / 'store').resolve()}/{key}"
    if kind == "memory":
        return f"memory:///{key}"
    if kind == "s3":
        return f"s3://{env('DRS_TEST_S3_BUCKET')}/{key}"
    if kind == "azure":
        return f"{env('DRS_TEST_AZURE_ENDPOINT')}/{env('DRS_TEST_AZURE_CONTAINER')}/{key}"
    if kind == "gcs":
        return f"gs://{env('DRS_TEST_GCS_BUCKET')}/{key}"
    assert kind == "sftp", kind
    server = f"{env('DRS_TEST_SFTP_USER')}@{env('DRS_TEST_SFTP_HOST')}:{env('DRS_TEST_SFTP_PORT')}"
    return f"sftp://{server}{env('DRS_TEST_SFTP_ROOT')}/{key}"


def columns(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    return [(column.name, column.type) for column in metadata["dagster/column_schema"].value.columns]


def assert_no_secret(metadata: dict[str, Any]) -> None:
    shown = repr(metadata)
    for name in SECRETS:
        secret = os.environ.get(name)
        assert not secret or secret not in shown, f"{name} shows in {shown}"


def test_outputs_record_typed_columns_size_in_bytes_and_uri(store: Store, tmp_path: Path, instance) -> None:
    resources = {
        "io_manager": remote_store_io_manager(store),
        "tables": remote_store_io_manager(store, serializer="parquet"),
    }
    result = materialize([*TABLES, counts], resources=resources, instance=instance)
    assert result.success
    for name in [*COLUMNS, "counts"]:
        [materialization] = result.asset_materializations_for_node(name)
        metadata = dict(materialization.metadata)
        path = path_of(name)
        assert metadata["path"].value == path
        assert metadata["dagster/uri"].value == expected_uri(store, tmp_path, path), name
        assert type(metadata["dagster/uri"]).__name__ == "TextMetadataValue"
        assert metadata["size_bytes"].value == store.head(path).size, name
        assert type(metadata["size_bytes"]).__name__ == "IntMetadataValue", "an int, which the UI plots"
        assert "size" not in metadata and "uri" not in metadata
        assert_no_secret(metadata)
        if name != "counts":
            assert columns(metadata) == COLUMNS[name], name


@pytest.mark.filterwarnings("ignore:Parameter `backfill_policy`")
def test_datasets_and_single_run_backfills_record_the_same(store: Store, tmp_path: Path, instance) -> None:
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")

    @asset(partitions_def=days, backfill_policy=BackfillPolicy.single_run())
    def ranged(context) -> dict[str, int]:
        return {key: int(key[-1]) for key in context.partition_keys}

    @asset(io_manager_key="datasets")
    def dataset() -> pd.DataFrame:
        return pd.DataFrame({"n": range(10), "x": [0.5] * 10})

    resources = {
        "io_manager": remote_store_io_manager(store),
        "datasets": dagster_dataset_io_manager(store, max_rows_per_part=4),
    }
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-01-01", ASSET_PARTITION_RANGE_END_TAG: "2026-01-03"}
    result = materialize([ranged], tags=tags, resources=resources, instance=instance)
    materializations = result.asset_materializations_for_node("ranged")
    assert len(materializations) == 3
    sizes = sum(store.head(f"ranged/2026-01-0{day}.pkl").size for day in (1, 2, 3))
    for materialization in materializations:
        assert materialization.metadata["size_bytes"].value == sizes
        assert materialization.metadata["dagster/uri"].value == expected_uri(store, tmp_path, "ranged")

    result = materialize([dataset], resources=resources, instance=instance)
    [materialization] = result.asset_materializations_for_node("dataset")
    metadata = dict(materialization.metadata)
    parts = [path for path in store.list("dataset") if path.endswith(".parquet")]
    assert len(parts) == 3 and metadata["size_bytes"].value == sum(store.head(path).size for path in parts)
    assert metadata["dagster/uri"].value == expected_uri(store, tmp_path, "dataset")
    assert columns(metadata) == [("n", "int64"), ("x", "float64")]


needs_map_asset_specs = pytest.mark.skipif(
    tuple(int(part) for part in dagster_version.split(".")[:3]) < (1, 9, 4),
    reason=f"with_storage_kinds needs dagster 1.9.4 or newer (map_asset_specs); this is {dagster_version}",
)


@needs_map_asset_specs
@pytest.mark.filterwarnings("ignore:Class `SourceAsset` is deprecated")
def test_with_storage_kinds_tags_the_assets_our_io_managers_store(tmp_path: Path) -> None:
    registry = tmp_path / "stores.toml"
    registry.write_text(
        '[backends.lake]\ntype = "gcs"\noptions = {bucket = "lake"}\n\n[stores.warehouse]\nbackend = "lake"\n'
    )
    s3 = {"backend_type": "s3", "backend_options": {"bucket": "lake", "secret": EnvVar("UNSET_SECRET")}}

    @asset(io_manager_key="sftp")
    def on_sftp() -> int:
        return 1

    @asset(io_manager_key="gcs", kinds={"pandas"}, tags={"team": "data"})
    def on_gcs() -> int:
        return 1

    @asset(io_manager_key="local", kinds={"a", "b", "c"})
    def three_kinds() -> int:
        return 1

    @asset(io_manager_key="local", tags={"dagster/storage_kind": "snowflake"})
    def tagged() -> int:
        return 1

    @asset
    def side_effect() -> None:
        """Stores nothing: no kind."""

    @asset
    def reported() -> MaterializeResult:
        return MaterializeResult()

    @asset(io_manager_key="files")
    def elsewhere() -> int:
        return 1

    external = AssetSpec("external").with_io_manager_key("tables")
    others = [external, AssetSpec("plain"), SourceAsset("source"), counts]
    defs = with_storage_kinds(
        Definitions(
            assets=[on_sftp, on_gcs, three_kinds, tagged, side_effect, reported, elsewhere, *others],
            resources={
                "io_manager": RemoteStoreIOManager(**s3),
                "tables": remote_store_io_manager(Store(LocalBackend(root=str(tmp_path))), serializer="parquet"),
                "sftp": RemoteStoreIOManager(
                    store_resource=DagsterStoreResource(backend_type="sftp", backend_options={"host": "h"})
                ),
                "gcs": RemoteStoreIOManager(profile="warehouse", registry_path=str(registry), serializer="parquet"),
                "local": dagster_dataset_io_manager(Store(LocalBackend(root=str(tmp_path)))),
                "files": FilesystemIOManager(base_dir=str(tmp_path)),
            },
        )
    )
    specs = {
        spec.key.to_user_string(): spec
        for item in defs.assets or []
        for spec in ([item] if isinstance(item, AssetSpec) else getattr(item, "specs", []))
    }
    shown = {key: (set(spec.kinds), spec.tags.get("dagster/storage_kind")) for key, spec in specs.items()}
    assert shown == {
        "on_sftp": ({"sftp"}, "sftp"),
        "on_gcs": ({"pandas", "gcs"}, "gcs"),
        "three_kinds": ({"a", "b", "c"}, "local"),
        "tagged": ({"local"}, "snowflake"),
        "side_effect": (set(), None),
        "reported": (set(), None),
        "elsewhere": (set(), None),
        "external": ({"local"}, "local"),
        "plain": (set(), None),
        "counts": ({"s3"}, "s3"),
    }
    assert specs["on_gcs"].tags["team"] == "data"
    assert [type(a).__name__ for a in defs.assets or []][-1] == "SourceAsset"


@pytest.mark.skipif(not hasattr(dagster, "Component"), reason="Components need dagster 1.12 or newer")
def test_a_components_project_wraps_what_its_defs_folder_loads(tmp_path: Path) -> None:
    from dagster.components.testing import create_defs_folder_sandbox

    attributes = {
        "backend_type": "local",
        "backend_options": {"root": str(tmp_path)},
        "io_managers": {"tables": "parquet"},
    }
    with create_defs_folder_sandbox() as sandbox:
        (sandbox.defs_folder_path / "storage").mkdir(parents=True)
        defs_yaml = {"type": "dagster_remote_store.components.RemoteStoreIOManagers", "attributes": attributes}
        (sandbox.defs_folder_path / "storage" / "defs.yaml").write_text(yaml.safe_dump(defs_yaml))
        code = "import dagster as dg\n\n\n@dg.asset(io_manager_key='tables')\ndef orders() -> int:\n    return 1\n"
        (sandbox.defs_folder_path / "orders.py").write_text(code)
        with sandbox.build_all_defs() as defs:
            tagged = with_storage_kinds(defs)
    [spec] = [spec for item in tagged.assets or [] for spec in item.specs]
    assert spec.kinds == {"local"} and spec.tags["dagster/storage_kind"] == "local"
    assert tagged.component_tree is defs.component_tree is not None, "dg still sees the project's components"


GRAPHQL_QUERY = """
query AssetAsShown($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      kinds
      tags { key value }
      assetMaterializations(limit: 1) {
        metadataEntries {
          label
          __typename
          ... on TableSchemaMetadataEntry { schema { columns { name type } } }
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path }
        }
      }
    }
  }
}
"""

DEFS_FILE = """
from dagster_remote_store import with_storage_kinds
from test_metadata import definitions

defs = with_storage_kinds(definitions({backend_type!r}, {backend_options!r}, {root_path!r}))
"""


@needs_map_asset_specs
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_the_ui_shows_column_types_size_uri_and_storage_kind(backend: str, tmp_path: Path) -> None:
    graphql = pytest.importorskip("dagster_graphql.test.utils", reason="dagster-webserver is not installed")
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    env = os.environ.__getitem__
    root_path = f"tests/{uuid.uuid4().hex}"
    if backend == "local":
        options: dict[str, Any] = {"root": str(tmp_path / "store")}
        uri = f"file://{(tmp_path / 'store').resolve()}/{root_path}"
    else:
        require_server("s3")
        options = {
            "bucket": env("DRS_TEST_S3_BUCKET"),
            "endpoint_url": env("DRS_TEST_S3_ENDPOINT"),
            "region_name": env("DRS_TEST_S3_REGION"),
            "key": {"env": "DRS_TEST_S3_KEY"},
            "secret": {"env": "DRS_TEST_S3_SECRET"},
            "allow_http": True,
        }
        uri = f"s3://{env('DRS_TEST_S3_BUCKET')}/{root_path}"
    defs_file = tmp_path / "defs.py"
    defs_file.write_text(DEFS_FILE.format(backend_type=backend, backend_options=options, root_path=root_path))
    defs = with_storage_kinds(definitions(backend, options, root_path))
    origin = LoadableTargetOrigin(python_file=str(defs_file), attribute="defs", working_directory=str(tmp_path))
    store = Store(make_backend(backend, tmp_path), root_path=root_path)
    # A persistent instance: the UI's workspace refuses an ephemeral one.
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance, store:
        assert materialize(list(defs.assets or []), resources=defs.resources, instance=instance).success
        with in_process_test_workspace(instance, origin) as context:
            shown = {name: query(graphql, context, name) for name in [*COLUMNS, "counts"]}
            sizes = {name: store.head(path_of(name)).size for name in shown}
    for name, node in shown.items():
        assert node["kinds"] == [backend], name
        assert {"key": "dagster/storage_kind", "value": backend} in node["tags"], node["tags"]
        [materialization] = node["assetMaterializations"]
        entries = {entry["label"]: entry for entry in materialization["metadataEntries"]}
        assert_no_secret(entries)
        path = path_of(name)
        assert entries["path"] == {"label": "path", "__typename": "PathMetadataEntry", "path": path}
        assert entries["dagster/uri"] == {
            "label": "dagster/uri",
            "__typename": "TextMetadataEntry",
            "text": f"{uri}/{path}",
        }
        assert entries["size_bytes"] == {
            "label": "size_bytes",
            "__typename": "IntMetadataEntry",
            "intValue": sizes[name],
        }
        if name != "counts":
            schema = entries["dagster/column_schema"]["schema"]["columns"]
            assert [(column["name"], column["type"]) for column in schema] == COLUMNS[name], name


def query(graphql: Any, context: Any, name: str) -> dict[str, Any]:
    """The asset `name` as the UI's GraphQL API gives it."""
    result = graphql.execute_dagster_graphql(context, GRAPHQL_QUERY, {"key": AssetKey(name).to_graphql_input()})
    assert not result.errors, result.errors
    return result.data["assetNodeOrError"]


def path_of(name: str) -> str:
    """Where the asset `name` of the assets above is stored."""
    return f"{name}.pkl" if name == "counts" else f"{name}.parquet"
