"""Storage kinds: which backend holds each asset, as the Dagster UI shows it (an icon on the
asset, a filter in the catalog). Kinds and tags belong to an asset's definition, which an IO
manager cannot change while it runs, so :func:`with_storage_kinds` sets them on the
definitions instead."""

from __future__ import annotations

import typing
from typing import Any, Union

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Definitions,
    EnvVar,
    MaterializeResult,
    OpDefinition,
    __version__ as dagster_version,
)

# `Definitions` is a record: its own `copy` keeps every field (component trees included).
from dagster._record import copy

from ._core import Registry
from .io_manager import _RemoteStoreIOManagerImpl
from .resources import DagsterStoreResource, RemoteStoreIOManager

__all__ = ["with_storage_kinds"]

_STORAGE_KIND_TAG = "dagster/storage_kind"
# The key Dagster records an asset spec's IO manager under.
_IO_MANAGER_KEY = "dagster/io_manager_key"
# Dagster refuses an asset with more kinds than this.
_MAX_KINDS = 3


def with_storage_kinds(defs: Definitions) -> Definitions:
    """``defs`` with every asset that one of this package's IO managers stores tagged with the
    backend that holds it: the kind (``s3``, ``azure``, ``gcs``, ``sftp``, ``local`` or
    ``memory``) and the ``dagster/storage_kind`` tag.

    An asset is one of those when its IO manager key is bound in ``defs.resources`` to a
    :class:`RemoteStoreIOManager` (its backend fields, its ``store_resource`` or its registry
    profile), or to an IO manager of :func:`remote_store_io_manager` or
    :func:`dagster_dataset_io_manager` on a :class:`Store`. Assets annotated to store nothing
    (``-> None``, ``-> MaterializeResult``) are left as they are, as are external assets whose
    spec names no IO manager. An asset keeps a ``dagster/storage_kind`` tag it has, and gets
    only the tag where it has Dagster's limit of three kinds already.

    .. code-block:: python

        defs = with_storage_kinds(Definitions(assets=[...], resources={"io_manager": RemoteStoreIOManager(...)}))

    Needs dagster 1.9.4 or newer (``map_asset_specs``).
    """
    try:
        from dagster import map_asset_specs
    except ImportError as err:
        raise ImportError(
            f"with_storage_kinds needs dagster 1.9.4 or newer (for map_asset_specs); this is dagster {dagster_version}"
        ) from err
    kinds = {key: kind for key, resource in (defs.resources or {}).items() if (kind := _storage_kind(resource))}
    stored_by = {
        key: io_manager
        for item in defs.assets or []
        if isinstance(item, (AssetsDefinition, AssetSpec))
        for key, io_manager in _io_managers(item).items()
    }

    def tag(spec: AssetSpec) -> AssetSpec:
        kind = kinds.get(stored_by.get(spec.key, ""))
        if kind is None:
            return spec
        tags = {} if _STORAGE_KIND_TAG in spec.tags else {_STORAGE_KIND_TAG: kind}
        return spec.merge_attributes(tags=tags, kinds={kind} if len(spec.kinds | {kind}) <= _MAX_KINDS else set())

    mappable = [item for item in defs.assets or [] if isinstance(item, (AssetsDefinition, AssetSpec))]
    others = [item for item in defs.assets or [] if not isinstance(item, (AssetsDefinition, AssetSpec))]
    return copy(defs, assets=[*map_asset_specs(tag, mappable), *others])


def _io_managers(assets: Union[AssetsDefinition, AssetSpec]) -> dict[AssetKey, str]:
    """The IO manager key of each asset of `assets` that an IO manager stores."""
    if isinstance(assets, AssetSpec):
        io_manager = assets.metadata.get(_IO_MANAGER_KEY)
        return {assets.key: io_manager} if io_manager else {}
    if not assets.is_executable:
        return {spec.key: spec.metadata[_IO_MANAGER_KEY] for spec in assets.specs if spec.metadata.get(_IO_MANAGER_KEY)}
    if _reports_only(assets):
        return {}
    stored = {}
    for spec in assets.specs:
        output = assets.node_def.output_def_named(assets.get_output_name_for_asset_key(spec.key))
        if not output.dagster_type.is_nothing:
            # Not public, but the one lookup that covers every kind of asset definition (1.9 to 1.13).
            stored[spec.key] = assets.get_io_manager_key_for_asset_key(spec.key)
    return stored


def _reports_only(assets: AssetsDefinition) -> bool:
    """Whether the function of `assets` is annotated to return only `MaterializeResult`s, which
    store nothing (its outputs' Dagster type says no more than `Any`)."""
    op = assets.node_def
    if not (isinstance(op, OpDefinition) and op.is_from_decorator()):
        return False
    annotation = op.get_output_annotation()
    results = typing.get_args(annotation) if typing.get_origin(annotation) is tuple else (annotation,)
    return bool(results) and all(result is MaterializeResult for result in results)


def _storage_kind(resource: Any) -> str | None:
    """The backend kind of `resource` if it is one of this package's IO managers, else None."""
    if isinstance(resource, _RemoteStoreIOManagerImpl):
        return resource.storage_kind
    if isinstance(resource, RemoteStoreIOManager):
        return _backend_kind(resource.store_resource if resource.store_resource is not None else resource)
    return None


def _backend_kind(config: Union[RemoteStoreIOManager, DagsterStoreResource]) -> str | None:
    """The backend type `config` names, or that of its registry profile (read, not connected to)."""
    profile, registry_path = _value(config.profile), _value(config.registry_path)
    if profile is not None and registry_path:
        with Registry.from_file(registry_path) as registry:
            return registry.backend_type(profile)
    return _value(config.backend_type)


def _value(field: str | None) -> str | None:
    """A config field's value; an `EnvVar` is read from the environment (None where unset)."""
    return field.get_value() if isinstance(field, EnvVar) else field
