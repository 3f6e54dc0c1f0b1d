"""Config-driven stores for Dagster: :class:`DagsterStoreResource` builds a Store
from Dagster config, :class:`RemoteStoreIOManager` is the IO manager built from
config (its own backend fields, a ``DagsterStoreResource``, or a registry profile).

Options are validated when the resource is set up, before any asset runs:
an unknown backend type or option, or a bad value, raises ``InvalidConfig``
naming the option and what is accepted. Credentials (``secret``,
``password``, ``account_key``, ...) never appear in a ``repr``, log line or
error; pass them as ``EnvVar("...")`` (or ``{"env": "VAR"}``) so they are not
written into Dagster's run config either.
"""

# No `from __future__ import annotations`: Dagster reads these field annotations
# at runtime, and a string `ResourceDependency[Any]` loses its meaning.
import warnings
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Optional, Protocol

from dagster import (
    ConfigurableIOManagerFactory,
    ConfigurableResource,
    InitResourceContext,
    IOManager,
    ResourceDependency,
)
from pydantic import PrivateAttr

from ._core import Registry, Store, redact_secrets
from .errors import InvalidConfig
from .io_manager import _DEFAULT_MAX_CONCURRENCY, remote_store_io_manager
from .versions import Retention

__all__ = ["DagsterStoreResource", "RemoteStoreIOManager"]

_SERIALIZERS = ("pickle", "json", "parquet", "parquet-dataset")


class _StoreFields(Protocol):
    """The fields `_StoreConfig` reads, for type checkers. They are not annotated on the
    mixin itself: pydantic would take those annotations as fields, first in field order."""

    backend_type: Optional[str]
    backend_options: dict[str, Any]
    root_path: str
    profile: Optional[str]
    registry_path: Optional[str]


def build_store(
    owner: str,
    *,
    backend_type: Optional[str],
    backend_options: dict[str, Any],
    root_path: str,
    profile: Optional[str],
    registry_path: Optional[str],
) -> "tuple[Store, Registry]":
    """A Store from inline backend fields or from a registry profile, and the registry that
    owns its backend (closing the registry closes it). Errors name `owner`."""
    if profile is not None:
        if backend_type is not None or backend_options:
            raise InvalidConfig(f"{owner}: give either profile= or backend_type=/backend_options=, not both")
        if not registry_path:
            raise InvalidConfig(f"{owner}: profile={profile!r} needs registry_path= (a TOML or JSON file)")
        registry, name = Registry.from_file(registry_path), profile
    elif backend_type is None:
        raise InvalidConfig(f"{owner}: give backend_type= (and backend_options=), or profile= and registry_path=")
    else:
        config = {
            "backends": {backend_type: {"type": backend_type, "options": backend_options}},
            "stores": {"store": {"backend": backend_type, "root_path": root_path}},
        }
        registry, name, root_path = Registry(config, context=owner), "store", ""
    try:
        return registry.get_store(name, root_path=root_path), registry
    except BaseException:
        registry.close()
        raise


def shown_credentials(options: Mapping[str, Any]) -> "list[str]":
    """The credential options of `options` given as text, where `{env: VARIABLE}` would keep them
    out of what Dagster shows. A service account given as a file's path holds no secret; its
    JSON does."""
    redacted = redact_secrets(dict(options))
    return [
        key
        for key, value in options.items()
        if isinstance(value, str)
        and redacted.get(key) == "***"
        and not (key == "service_account" and not value.lstrip().startswith("{"))
    ]


def warn_of_shown_credentials(owner: str, options: Mapping[str, Any], source: str, shown_on: str) -> None:
    """Warns of each credential in `options` written as text in `source`, which the Dagster UI
    shows on `shown_on`."""
    literal = shown_credentials(options)
    if literal:
        names = ", ".join(repr(key) for key in literal)
        warnings.warn(
            f"{owner}: backend option {names} is written as text in {source}, which the Dagster UI shows "
            f"on {shown_on}; give it as {{env: VARIABLE}}",
            UserWarning,
            stacklevel=3,
        )


class _StoreConfig:
    """Building the store from the fields that say where it is (`backend_type`,
    `backend_options`, `root_path`, `profile`, `registry_path`), shared by the
    resource and the IO manager, which both declare them."""

    def _build_store(self: _StoreFields, owner: str) -> "tuple[Store, Registry]":
        return build_store(
            owner,
            backend_type=self.backend_type,
            backend_options=self.backend_options,
            root_path=self.root_path,
            profile=self.profile,
            registry_path=self.registry_path,
        )

    def _shown_fields(self: _StoreFields) -> "list[tuple[str, Any]]":
        fields: list[tuple[str, Any]] = []
        if self.profile is not None:
            fields += [("profile", self.profile), ("registry_path", self.registry_path)]
        if self.backend_type is not None:
            fields += [("backend_type", self.backend_type), ("backend_options", redact_secrets(self.backend_options))]
        if self.root_path:
            fields.append(("root_path", self.root_path))
        return fields


# Unparametrized, as Dagster's own examples subclass it (a parametrized base would be
# another pydantic model class at runtime); the resource's value is the resource itself.
class DagsterStoreResource(ConfigurableResource, _StoreConfig):  # type: ignore[type-arg]
    """A Store built from Dagster config, once per process when the resource is
    set up, and closed after execution (no SFTP or HTTP connections leak).

    ``backend_type`` is ``"local"``, ``"memory"``, ``"s3"``, ``"azure"``,
    ``"gcs"`` or ``"sftp"``; ``backend_options`` are that backend's constructor
    options (``{"bucket": "lake", "region_name": "eu-west-1"}``); ``root_path``
    scopes the Store to a folder. Instead of the backend fields, ``profile``
    names a store of the registry file at ``registry_path``.

    Assets and other resources call :meth:`get_store`.
    """

    backend_type: Optional[str] = None
    backend_options: dict[str, Any] = {}
    root_path: str = ""
    profile: Optional[str] = None
    registry_path: Optional[str] = None

    _store: Optional[Store] = PrivateAttr(default=None)
    _registry: Optional[Registry] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._store, self._registry = self._build_store(type(self).__name__)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        registry, self._registry, self._store = self._registry, None, None
        if registry is not None:
            registry.close()

    def get_store(self) -> Store:
        """The Store; only while the resource is set up (inside a run)."""
        if self._store is None:
            raise RuntimeError(
                "DagsterStoreResource.get_store() was called before the resource was set up: "
                "use it from an asset or op that requires it, or call setup_for_execution() first"
            )
        return self._store

    def __repr_args__(self) -> "list[tuple[str, Any]]":
        return self._shown_fields()


# Unparametrized, for the same reason as DagsterStoreResource; it creates an IOManager.
class RemoteStoreIOManager(ConfigurableIOManagerFactory, _StoreConfig):  # type: ignore[type-arg]
    """The Dagster IO manager, configured rather than built in code.

    The store comes from exactly one of: ``store_resource`` (a
    :class:`DagsterStoreResource`), the backend fields (``backend_type``,
    ``backend_options``, ``root_path``, as on the resource), or ``profile`` with
    ``registry_path``. ``serializer`` is ``"pickle"``, ``"json"``,
    ``"parquet"`` or ``"parquet-dataset"``; ``custom_serializer`` takes any object with ``extension``,
    ``serialize`` and ``deserialize`` (set in code, not in config) and wins over
    ``serializer``; ``extension`` replaces the serializer's file extension.
    ``allowed_pickle_globals`` restricts what pickle loads may import and call
    (``["@data", "mypackage.*"]``; see ``PickleSerializer(allowed_globals=...)``).
    ``versioned`` keeps every materialization as a version of its own, and ``keep_last`` /
    ``keep_for_days`` are the retention that :func:`cleanup_sensor` applies to them (see
    ``remote_store_io_manager``).
    """

    store_resource: Optional[DagsterStoreResource] = None
    backend_type: Optional[str] = None
    backend_options: dict[str, Any] = {}
    root_path: str = ""
    profile: Optional[str] = None
    registry_path: Optional[str] = None
    serializer: str = "pickle"
    # None is "not given"; mypy checks the default against the descriptor type itself.
    custom_serializer: ResourceDependency[Any] = None  # type: ignore[assignment]
    extension: Optional[str] = None
    max_concurrency: int = _DEFAULT_MAX_CONCURRENCY
    allowed_pickle_globals: Optional[list[str]] = None
    versioned: bool = False
    keep_last: Optional[int] = None
    keep_for_days: Optional[float] = None

    _registry: Optional[Registry] = PrivateAttr(default=None)

    def create_io_manager(self, context: InitResourceContext) -> IOManager:
        owner = type(self).__name__
        inline = self.backend_type is not None or self.profile is not None or bool(self.backend_options)
        if self.store_resource is not None and inline:
            raise InvalidConfig(
                f"{owner}: give either store_resource= or the backend fields "
                "(backend_type=, backend_options=, root_path=, or profile=), not both"
            )
        if self.custom_serializer is None and self.serializer not in _SERIALIZERS:
            raise InvalidConfig(
                f"{owner}: unknown serializer {self.serializer!r}; accepted: {', '.join(_SERIALIZERS)} "
                "(or custom_serializer= for your own)"
            )
        if self.store_resource is not None:
            store = self.store_resource.get_store()
        else:
            if not inline:
                raise InvalidConfig(
                    f"{owner}: no store: give store_resource=DagsterStoreResource(...), "
                    "backend_type= with backend_options=, or profile= with registry_path="
                )
            store, self._registry = self._build_store(owner)
        serializer = self.custom_serializer if self.custom_serializer is not None else self.serializer
        retention = None
        if self.keep_last is not None or self.keep_for_days is not None:
            keep_for = timedelta(days=self.keep_for_days) if self.keep_for_days is not None else None
            retention = Retention(keep_last=self.keep_last, keep_for=keep_for)
        return remote_store_io_manager(
            store,
            serializer,
            max_concurrency=self.max_concurrency,
            extension=self.extension,
            allowed_pickle_globals=self.allowed_pickle_globals,
            versioned=self.versioned,
            retention=retention,
        )

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        registry, self._registry = self._registry, None
        if registry is not None:
            registry.close()

    def __repr_args__(self) -> "list[tuple[str, Any]]":
        fields: list[tuple[str, Any]] = []
        if self.store_resource is not None:
            fields.append(("store_resource", self.store_resource))
        fields += self._shown_fields()
        serializer = type(self.custom_serializer).__name__ if self.custom_serializer else self.serializer
        fields.append(("serializer", serializer))
        if self.extension is not None:
            fields.append(("extension", self.extension))
        if self.allowed_pickle_globals is not None:
            fields.append(("allowed_pickle_globals", self.allowed_pickle_globals))
        versions = ("versioned", "keep_last", "keep_for_days")
        fields += [(name, getattr(self, name)) for name in versions if getattr(self, name)]
        return fields
