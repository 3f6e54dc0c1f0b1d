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

``dg scaffold defs dagster_remote_store.components.RemoteStoreIOManagers storage --backend-type s3``
writes such a file: the backend's required options to fill in, its credentials as ``{env: VARIABLE}``
(``--credentials`` picks them, ``--env-prefix`` names their variables), and a comment listing every
option the backend accepts.

Options are checked when the definitions load (``dg check defs``): an unknown backend option
fails naming it and the accepted ones. Give credentials as ``{env: VARIABLE}``. A credential
written as text, or through ``{{ env.X }}`` templating (filled in when the definitions load), is
shown on the UI's resource page, and a warning says so. Requires dagster 1.12 or newer.
"""

# No `from __future__ import annotations`: Dagster derives each component's model from these
# annotations at runtime.
import os
import re
import textwrap
from typing import Annotated, Any, Literal, Optional, get_args

import dagster as dg
from pydantic import Field

from ._core import Registry, redact_secrets
from .errors import InvalidConfig
from .io_manager import _DEFAULT_MAX_CONCURRENCY
from .resources import DagsterStoreResource, RemoteStoreIOManager, warn_of_shown_credentials

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
        _validate(owner, self.backend_type, options, self.root_path)


def _validate(owner: str, backend_type: str, options: "dict[str, Any]", root_path: str = "") -> None:
    """Raises the registry's InvalidConfig, naming `owner`, if these settings make no store."""
    config = {
        "backends": {backend_type: {"type": backend_type, "options": options}},
        "stores": {"store": {"backend": backend_type, "root_path": root_path}},
    }
    Registry(config, context=owner).close()


def _placeholder(key: str, value: Any) -> Any:
    """A credential read from a variable that is not set here stands in as text for the check."""
    if isinstance(value, dict) and set(value) == {"env"} and value["env"] not in os.environ:
        return "unset" if _is_credential(key) else value
    return value


def _is_credential(option: str) -> bool:
    """Whether the registry holds the option `option` as a credential."""
    return bool(redact_secrets({option: ""})[option] == "***")


class _ScaffoldParams(dg.Model):
    """What ``dg scaffold defs`` takes: ``--backend-type s3 --credentials key --credentials secret
    --env-prefix LAKE``."""

    backend_type: str = "local"
    # The credential options given as {env: VARIABLE}; every one the backend takes by default.
    credentials: Optional[list[str]] = None
    # Their variables are <ENV_PREFIX>_<OPTION>, upper case; the prefix is the backend type by default.
    env_prefix: Optional[str] = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


def _refusal(owner: str, backend_type: str, options: "dict[str, Any]") -> str:
    """What the registry says against these options, or "" if it takes them."""
    try:
        _validate(owner, backend_type, options)
    except InvalidConfig as refused:
        return str(refused)
    return ""


def _backend_spec(owner: str, backend_type: str) -> "tuple[list[str], list[str]]":
    """The options of `backend_type` and those it requires, as the registry names them: in its
    answer to an unknown option (the options sorted, then remote-store's aliases, which a new file
    does without), then in its answer to each required one left out."""
    refusal = _refusal(owner, backend_type, {"?": None})
    listed = re.search(r"; accepted for [\w-]+: (.+)$", refusal)
    if listed is None and "takes no options" not in refusal:
        raise InvalidConfig(refusal)  # an unknown type, with the accepted ones
    accepted = listed[1].split(", ") if listed else []
    aliases = next((i for i in range(1, len(accepted)) if accepted[i] < accepted[i - 1]), len(accepted))
    required: list[str] = []
    while missing := re.search(
        r'missing required option "(\w+)"', _refusal(owner, backend_type, dict.fromkeys(required, "-"))
    ):
        required.append(missing[1])
    return accepted[:aliases], required


def _defs_yaml(type_name: str, params: _ScaffoldParams, own_attributes: "list[str]") -> str:
    """A defs.yaml for the component `type_name` on a backend of `params.backend_type`."""
    owner = f"dg scaffold defs {type_name}"
    accepted, required = _backend_spec(owner, params.backend_type)
    offered = [name for name in accepted if _is_credential(name)]
    credentials = offered if params.credentials is None else params.credentials
    if unknown := [name for name in credentials if name not in offered]:
        raise InvalidConfig(
            f"{owner}: --credentials {', '.join(unknown)}: not a credential of {params.backend_type}, "
            f"whose credentials are: {', '.join(offered) or 'none'}"
        )
    prefix = params.env_prefix or params.backend_type
    variables = {name: f"{prefix}_{name}".upper() for name in credentials}
    options = [f"    {name}:  # required" for name in required]
    options += [f"    {name}: {{env: {variable}}}" for name, variable in variables.items()]
    lines = [f"type: {type_name}", "", "attributes:", f"  backend_type: {params.backend_type}"]
    if accepted:
        listing = f"Options of {params.backend_type}: {', '.join(accepted)}."
        lines += textwrap.wrap(listing, 100, initial_indent="  # ", subsequent_indent="  # ")
    if variables:
        lines.append("  # Credentials as {env: VARIABLE}, which the UI shows by name: keep those you use.")
    if options:
        lines += ["  backend_options:", *options]
    lines += own_attributes
    if variables:
        lines += ["", "requirements:", f"  env: [{', '.join(variables.values())}]"]
    return "\n".join(lines) + "\n"


class _StoreScaffolder(dg.Scaffolder[_ScaffoldParams]):
    """Writes the defs.yaml of a component on one store; `own_attributes` are the component's
    own lines after the store's."""

    own_attributes: "list[str]" = []

    @classmethod
    def get_scaffold_params(cls) -> type[_ScaffoldParams]:
        return _ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[_ScaffoldParams]) -> None:
        if request.scaffold_format != "yaml":
            raise InvalidConfig(f"{request.type_name} is scaffolded as defs.yaml: give --format yaml")
        (request.target_path / "defs.yaml").write_text(
            _defs_yaml(request.type_name, request.params, self.own_attributes)
        )


class _ResourceScaffolder(_StoreScaffolder):
    own_attributes = ["  resource_key: store"]


class _IOManagersScaffolder(_StoreScaffolder):
    own_attributes = [
        f"  # Resource key: serializer ({', '.join(get_args(Serializer))}).",
        "  io_managers:",
        "    io_manager: pickle",
    ]


@dg.scaffold_with(_ResourceScaffolder)
class RemoteStoreResource(dg.Component, dg.Resolvable, _StoreLocation):
    """A :class:`DagsterStoreResource` under ``resource_key`` (``store`` by default), for assets
    that read and write the store themselves."""

    resource_key: str = "store"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        self._check(type(self).__name__)
        return dg.Definitions(resources={self.resource_key: DagsterStoreResource(**self._store_fields())})


@dg.scaffold_with(_IOManagersScaffolder)
class RemoteStoreIOManagers(dg.Component, dg.Resolvable, _StoreLocation):
    """IO managers on one store: ``io_managers`` maps each resource key to the serializer its
    outputs are stored with (``pickle``, ``json``, ``parquet``, ``parquet-dataset``).
    ``versioned``, ``keep_last`` and ``keep_for_days`` apply to each (see ``RemoteStoreIOManager``)."""

    io_managers: dict[str, Serializer] = {"io_manager": "pickle"}
    max_concurrency: int = _DEFAULT_MAX_CONCURRENCY
    versioned: bool = False
    keep_last: Optional[int] = None
    keep_for_days: Optional[float] = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        self._check(type(self).__name__)
        return dg.Definitions(
            resources={
                key: RemoteStoreIOManager(
                    **self._store_fields(),
                    serializer=serializer,
                    max_concurrency=self.max_concurrency,
                    versioned=self.versioned,
                    keep_last=self.keep_last,
                    keep_for_days=self.keep_for_days,
                )
                for key, serializer in self.io_managers.items()
            }
        )
