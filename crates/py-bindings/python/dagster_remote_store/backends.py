"""Storage backends. Pass one to :class:`dagster_remote_store.Store`.

``LocalBackend(root, *, fsync=False)``: files under a local or mounted folder,
written atomically (temporary file beside the target, then rename).

``MemoryBackend()``: objects in this process's memory, for tests and ephemeral
runs. Each instance is its own space; other processes (such as steps of
Dagster's multiprocess executor) do not see it.
"""

from ._core import Backend, LocalBackend, MemoryBackend

__all__ = ["Backend", "LocalBackend", "MemoryBackend"]
