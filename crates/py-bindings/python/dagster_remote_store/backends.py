"""Storage backends. Pass one to :class:`dagster_remote_store.Store`.

``LocalBackend(root, *, fsync=False)``: files under a local or mounted folder,
written atomically: a new file put at the target only when complete.

``MemoryBackend()``: objects in this process's memory, for tests and ephemeral
runs. Each instance is its own space; other processes (such as steps of
Dagster's multiprocess executor) do not see it.

``S3Backend(bucket, *, endpoint_url, key, secret, token, region_name, ...)``:
Amazon S3 and S3-compatible servers.

``AzureBackend(container, *, account_name, account_key, sas_token,
connection_string, account_url, ...)``: Azure Blob Storage.

``GCSBackend(bucket, *, service_account, base_url, anonymous, ...)``: Google
Cloud Storage.

``SFTPBackend(host, *, username, base_path, port=22, password | private_key,
known_hosts | host_key_fingerprint | accept_any_host_key, timeout, ...)``: an
SFTP server. Host keys are checked by default against ``~/.ssh/known_hosts``.

The HTTP backends also take ``allow_http`` (plain HTTP, for emulators; off by
default), ``max_retries`` (5) and, in seconds, ``connect_timeout`` (5),
``read_timeout`` (60: until the response starts, then between reads),
``timeout`` (300, per request) and ``retry_timeout`` (90): a call against a
server that stops answering fails in about two minutes. Options left out come
from the environment the cloud SDKs read (``AWS_*``, ``AZURE_STORAGE_*``,
``GOOGLE_*``); a credential given explicitly replaces the environment's.
"""

from ._core import AzureBackend, Backend, GCSBackend, LocalBackend, MemoryBackend, S3Backend, SFTPBackend

__all__ = ["AzureBackend", "Backend", "GCSBackend", "LocalBackend", "MemoryBackend", "S3Backend", "SFTPBackend"]
