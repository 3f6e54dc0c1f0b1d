"""Dagster Components: the store resource and IO managers from a project's ``defs.yaml``.

.. code-block:: yaml

    # src/<project>/defs/storage/defs.yaml
    type: dagster_remote_store.components.RemoteStoreIOManagers
    attributes:
      backend_type: s3
      backend_options:
        bucket: lake
        region_name: eu-west-1
        secret: {env: S3_SECRET}      # the UI shows the variable's name, never its value
      io_managers:                    # resource key: serializer
        io_manager: pickle
        tables: parquet

Options are checked when the definitions load (``dg check defs``): an unknown backend option
fails naming it and the accepted ones. Give credentials as ``{env: VARIABLE}``. A credential
written as text, or through ``{{ env.X }}`` templating (filled in when the definitions load), is
shown on the UI's resource page, and a warning says so. Requires dagster 1.12 or newer.
"""

# No `from __future__ import annotations`: Dagster derives each component's model from these
# annotations at runtime.
import os
from typing import Annotated, Any, Literal, Optional

import dagster as dg

from ._core import Registry
from .errors import InvalidConfig
from .io_manager import _DEFAULT_MAX_CONCURRENCY
from .resources import DagsterStoreResource, RemoteStoreIOManager, shown_credentials, warn_of_shown_credentials

__all__ = ["RemoteStoreIOManagers", "RemoteStoreResource"]

Serializer = Literal["pickle", "json", "parquet", "parquet-dataset"]


def _backend_options(context: dg.ResolutionContext, options: Any) -> Any:
    """`backend_options` as given, `{{ ... }}` templates filled in; a credential given as text or
    as a template is warned of, before the template puts the secret itself in the config."""
    if isinstance(options, dict):
        warn_of_shown_credentials(
            "dagster_remote_store.components",
            options,
            "defs.yaml (or by a {{ env.X }} template)",
            "the resource's page",
        )
    return context.resolve_value(options)


BackendOptions = Annotated[
    dict[str, Any],
    dg.Resolver(
        _backend_options,
        model_field_type=dict[str, Any],
        description="The backend's options; credentials as {env: VARIABLE}.",
    ),
]


class _StoreLocation(dg.Model):
    """Where the store is: a backend (`backend_type`, `backend_options`, `root_path`), or a
    registry file's store (`profile`, `registry_path`)."""

    backend_type: Optional[str] = None
    backend_options: BackendOptions = {}
    root_path: str = ""
    profile: Optional[str] = None
    registry_path: Optional[str] = None

    def _store_fields(self) -> "dict[str, Any]":
        return {
            "backend_type": self.backend_type,
            "backend_options": self.backend_options,
            "root_path": self.root_path,
            "profile": self.profile,
            "registry_path": self.registry_path,
        }

    def _check(self, owner: str) -> None:
        """Checks the options as the store would, without connecting and without the
        credentials' variables, which a run reads when it starts."""
        if self.profile is not None:
            if self.backend_type is not None or self.backend_options:
                raise InvalidConfig(f"{owner}: give either profile or backend_type/backend_options, not both")
            if not self.registry_path:
                raise InvalidConfig(f"{owner}: profile {self.profile!r} needs registry_path (a TOML or JSON file)")
            Registry.from_file(self.registry_path).close()
            return
        if self.backend_type is None:
            raise InvalidConfig(f"{owner}: give backend_type (and backend_options), or profile and registry_path")
        options = {key: _placeholder(key, value) for key, value in self.backend_options.items()}
        config = {
            "backends": {"backend": {"type": self.backend_type, "options": options}},
            "stores": {"store": {"backend": "backend", "root_path": self.root_path}},
        }
        Registry(config, context=owner).close()


def _placeholder(key: str, value: Any) -> Any:
    """A credential read from a variable that is not set here stands in as text for the check."""
    if isinstance(value, dict) and set(value) == {"env"} and value["env"] not in os.environ:
        return "unset" if shown_credentials({key: "unset"}) else value
    return value


class RemoteStoreResource(dg.Component, dg.Resolvable, _StoreLocation):
    """A :class:`DagsterStoreResource` under ``resource_key`` (``store`` by default), for assets
    that read and write the store themselves."""

    resource_key: str = "store"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        self._check(type(self).__name__)
        return dg.Definitions(resources={self.resource_key: DagsterStoreResource(**self._store_fields())})


class RemoteStoreIOManagers(dg.Component, dg.Resolvable, _StoreLocation):
    """IO managers on one store: ``io_managers`` maps each resource key to the serializer its
    outputs are stored with (``pickle``, ``json``, ``parquet``, ``parquet-dataset``)."""

    io_managers: dict[str, Serializer] = {"io_manager": "pickle"}
    max_concurrency: int = _DEFAULT_MAX_CONCURRENCY

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        self._check(type(self).__name__)
        return dg.Definitions(
            resources={
                key: RemoteStoreIOManager(
                    **self._store_fields(), serializer=serializer, max_concurrency=self.max_concurrency
                )
                for key, serializer in self.io_managers.items()
            }
        )
