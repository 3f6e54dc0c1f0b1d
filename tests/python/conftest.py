"""Shared fixtures: every store-level test runs on each backend."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from dagster_remote_store import Store
from dagster_remote_store.backends import LocalBackend, MemoryBackend

BACKENDS = ["local", "memory"]


def make_store(kind: str, tmp_path) -> Store:
    if kind == "local":
        return Store(LocalBackend(root=str(tmp_path / "store")))
    if kind == "memory":
        return Store(MemoryBackend())
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Store:
    with make_store(request.param, tmp_path) as store:
        yield store


@pytest.fixture
def instance():
    """An ephemeral Dagster instance, closed after the test."""
    with DagsterInstance.ephemeral() as instance:
        yield instance
