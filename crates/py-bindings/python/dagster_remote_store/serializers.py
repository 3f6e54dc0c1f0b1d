"""How values become bytes: built-in serializers and the protocol for your own."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ._core import JsonSerializer, ParquetSerializer, PickleSerializer, serializer_names

__all__ = ["JsonSerializer", "ParquetSerializer", "PickleSerializer", "Serializer", "serializer_names"]


@runtime_checkable
class Serializer(Protocol):
    """What ``serializer=`` accepts besides a registered name.

    ``extension`` (with the dot, e.g. ``".csv"``) ends every stored path;
    ``serialize`` must return ``bytes``.
    """

    extension: str

    def serialize(self, obj: Any) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...
