"""How values become bytes: built-in serializers and the protocol for your own."""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from ._core import JsonSerializer, ParquetSerializer, PickleSerializer, serializer_names
from .errors import InvalidConfig

__all__ = ["DATA_GLOBALS", "JsonSerializer", "ParquetSerializer", "PickleSerializer", "Serializer", "serializer_names"]


@runtime_checkable
class Serializer(Protocol):
    """What ``serializer=`` accepts besides a registered name.

    ``extension`` (with the dot, e.g. ``".csv"``) ends every stored path;
    ``serialize`` must return ``bytes``.
    """

    extension: str

    def serialize(self, obj: Any) -> bytes: ...

    def deserialize(self, data: bytes) -> Any: ...


# The globals that pickles of common data name (protocols 3 to 5), as ``allowed_globals``
# entry "@data": builtins containers, datetime, decimal, collections, numpy arrays, pandas
# frames and series, polars frames and series, pyarrow tables. Single names, no wildcards:
# a package also holds functions that must never run from a pickle (``pandas.read_pickle``).
DATA_GLOBALS: tuple[str, ...] = (
    *(
        f"builtins.{name}"
        for name in ("bytearray", "bytes", "complex", "dict", "frozenset", "list", "range", "set", "slice", "tuple")
    ),
    *(f"datetime.{name}" for name in ("date", "datetime", "time", "timedelta", "timezone")),
    "zoneinfo.ZoneInfo",
    "zoneinfo.ZoneInfo._unpickle",
    "pytz._p",
    "pytz._UTC",
    "decimal.Decimal",
    *(f"collections.{name}" for name in ("Counter", "OrderedDict", "defaultdict", "deque")),
    # numpy 2 moved numpy.core to numpy._core; pickles name either.
    *(
        f"numpy.{core}.{name}"
        for core in ("core", "_core")
        for name in ("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer")
    ),
    "numpy.dtype",
    "numpy.ndarray",
    "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
    "pandas._libs.internals._unpickle_block",
    "pandas._libs.interval.__pyx_unpickle_IntervalMixin",
    "pandas._libs.missing.NA",
    "pandas._libs.tslibs.nattype.__nat_unpickle",
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
    "pandas._libs.tslibs.timestamps._unpickle_timestamp",
    *(
        f"pandas._libs.tslibs.offsets.{name}"
        for name in (
            "BusinessDay", "BusinessMonthBegin", "BusinessMonthEnd", "DateOffset", "Day", "Hour", "Micro",
            "Milli", "Minute", "MonthBegin", "MonthEnd", "Nano", "QuarterBegin", "QuarterEnd", "Second",
            "Week", "YearBegin", "YearEnd",
        )
    ),
    "pandas.core.arrays.boolean.BooleanArray",
    "pandas.core.arrays.boolean.BooleanDtype",
    "pandas.core.arrays.categorical.Categorical",
    "pandas.core.arrays.datetimes.DatetimeArray",
    "pandas.core.arrays.floating.Float32Dtype",
    "pandas.core.arrays.floating.Float64Dtype",
    "pandas.core.arrays.floating.FloatingArray",
    *(f"pandas.core.arrays.integer.{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    "pandas.core.arrays.integer.IntegerArray",
    "pandas.core.arrays.interval.IntervalArray",
    "pandas.core.arrays.period.PeriodArray",
    "pandas.core.arrays.string_.StringArray",
    "pandas.core.arrays.string_.StringDtype",
    "pandas.core.arrays.timedeltas.TimedeltaArray",
    *(
        f"pandas.core.dtypes.dtypes.{name}"
        for name in ("CategoricalDtype", "DatetimeTZDtype", "IntervalDtype", "PeriodDtype")
    ),
    "pandas.core.frame.DataFrame",
    "pandas.core.series.Series",
    "pandas.core.indexes.base.Index",
    "pandas.core.indexes.base._new_Index",
    "pandas.core.indexes.category.CategoricalIndex",
    "pandas.core.indexes.datetimes.DatetimeIndex",
    "pandas.core.indexes.datetimes._new_DatetimeIndex",
    "pandas.core.indexes.interval.IntervalIndex",
    "pandas.core.indexes.multi.MultiIndex",
    "pandas.core.indexes.period.PeriodIndex",
    "pandas.core.indexes.range.RangeIndex",
    "pandas.core.indexes.timedeltas.TimedeltaIndex",
    "pandas.core.internals.managers.BlockManager",
    "pandas.core.internals.managers.SingleBlockManager",
    # pandas 3 pickles its classes by their public names.
    *(
        f"pandas.{name}"
        for name in (
            "BooleanDtype", "Categorical", "CategoricalDtype", "CategoricalIndex", "DataFrame", "DateOffset",
            "DatetimeIndex", "DatetimeTZDtype", "Float32Dtype", "Float64Dtype", "Index", "IntervalDtype",
            "IntervalIndex", "MultiIndex", "PeriodDtype", "PeriodIndex", "RangeIndex", "Series", "StringDtype",
            "TimedeltaIndex",
            *(f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
        )
    ),
    *(
        f"pandas.arrays.{name}"
        for name in (
            "ArrowStringArray", "BooleanArray", "DatetimeArray", "FloatingArray", "IntegerArray", "IntervalArray",
            "PeriodArray", "StringArray", "TimedeltaArray",
        )
    ),
    "polars.dataframe.frame.DataFrame",
    "polars.series.series.Series",
    *(
        f"pyarrow.lib.{name}"
        for name in (
            "_reconstruct_record_batch", "_reconstruct_table", "_restore_array", "chunked_array", "dictionary",
            "field", "list_", "large_list", "map_", "py_buffer", "schema", "struct", "timestamp", "type_for_alias",
            "decimal128", "time32", "time64", "duration", "date32", "date64",
        )
    ),
)

_PRESETS = {"@data": DATA_GLOBALS}


class RestrictedPickle:
    """``load`` and ``loads`` as in the ``pickle`` module, with an unpickler whose
    ``find_class`` only resolves the globals ``allowed_globals`` names (see the
    ``pickle`` docs, "Restricting Globals"): any other raises
    ``pickle.UnpicklingError`` naming it, before its module is even imported.

    Entries: ``"module.Name"`` (one class or function), ``"package.*"`` (anything
    defined in the package or its submodules) or ``"@data"`` (:data:`DATA_GLOBALS`).
    ``builtins.getattr``, which pickles use to name methods, is only ever given
    attributes of classes that the entries allow as ``"module.Class.attribute"``.
    """

    def __init__(self, allowed_globals: Iterable[str]) -> None:
        if isinstance(allowed_globals, str):
            raise InvalidConfig(f"allowed_globals must be a list of strings, not the string {allowed_globals!r}")
        entries = list(allowed_globals)
        self._exact: set[str] = set()
        self._packages: list[str] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise InvalidConfig(f"allowed_globals entries must be strings, got {entry!r}")
            if entry.startswith("@"):
                if entry not in _PRESETS:
                    raise InvalidConfig(f"allowed_globals: unknown preset {entry!r}; presets: {', '.join(_PRESETS)}")
                self._exact.update(_PRESETS[entry])
            elif entry.endswith(".*") and _is_dotted_name(entry[:-2]):
                self._packages.append(entry[:-2])
            elif _is_dotted_name(entry) and "." in entry:
                self._exact.add(entry)
            else:
                raise InvalidConfig(
                    f"allowed_globals: bad entry {entry!r}; expected 'module.Name', 'package.*' or "
                    f"one of the presets {', '.join(_PRESETS)}"
                )
        self.allowed_globals = tuple(entries)

    def __repr__(self) -> str:
        return f"RestrictedPickle({list(self.allowed_globals)!r})"

    def load(self, file: Any) -> Any:
        return _Unpickler(file, self).load()

    def loads(self, data: bytes) -> Any:
        return self.load(io.BytesIO(data))

    def resolve(self, module: str, name: str, find: Any) -> Any:
        """The global ``module.name`` through ``find`` (``Unpickler.find_class``), if allowed."""
        if module == "builtins" and name == "getattr":
            return self._getattr
        if f"{module}.{name}" in self._exact:
            return find(module, name)
        package = next((p for p in self._packages if module == p or module.startswith(p + ".")), None)
        # Attribute paths must not reach into dunders (`Cls.__init__.__globals__`), and what
        # they find must be defined in the package: not a function it imported (`mod.os.system`).
        if package is not None and not any(part.startswith("__") for part in name.split(".")[:-1]):
            found = find(module, name)
            if _defined_in(found, package):
                return found
        raise pickle.UnpicklingError(f"global {module}.{name} is refused: allowed_globals does not allow it")

    def _getattr(self, owner: Any, name: str) -> Any:
        if isinstance(owner, type) and isinstance(name, str) and not name.startswith("__"):
            if f"{owner.__module__}.{owner.__qualname__}.{name}" in self._exact:
                return getattr(owner, name)
            package = next((p for p in self._packages if _defined_in(owner, p)), None)
            if package is not None and _defined_in(found := getattr(owner, name), package):
                return found
        shown = f"{owner.__module__}.{owner.__qualname__}" if isinstance(owner, type) else type(owner).__name__
        raise pickle.UnpicklingError(f"getattr({shown}, {name!r}) is refused: allowed_globals does not allow it")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, allowed: RestrictedPickle) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        return self._allowed.resolve(module, name, super().find_class)


def _is_dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _defined_in(obj: Any, package: str) -> bool:
    """Whether ``obj`` (a class, function or constant, not a module) comes from ``package``
    or one of its submodules."""
    module = None if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    return isinstance(module, str) and (module == package or module.startswith(package + "."))
