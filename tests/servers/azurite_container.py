"""Creates a blob container on Azurite for the tests (object_store cannot create containers).

A SharedKey-signed `PUT /ACCOUNT/CONTAINER?restype=container`. Test-only; stdlib only, so the xtask can run it
with the venv's python (`cargo xtask test|servers`, xtask/src/servers.rs) without the Azure SDK.

Usage: azurite_container.py ENDPOINT ACCOUNT KEY CONTAINER   (ENDPOINT: http://127.0.0.1:PORT/ACCOUNT)
Exits 0 when the container exists afterwards (created now or before), 1 otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import sys
from email.utils import formatdate
from urllib.parse import urlsplit

API_VERSION = "2021-08-06"


def main() -> int:
    endpoint, account, key, container = sys.argv[1:]
    url = urlsplit(f"{endpoint}/{container}")
    date = formatdate(usegmt=True)
    # The Blob service's SharedKey string to sign: the verb, eleven standard headers (all empty for this request,
    # Content-Length 0 included), the x-ms-* headers, then the resource with its query parameters.
    to_sign = "\n".join(
        ["PUT"] + [""] * 11 + [f"x-ms-date:{date}", f"x-ms-version:{API_VERSION}", f"/{account}{url.path}"]
    )
    to_sign += "\nrestype:container"
    signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest())
    headers = {
        "x-ms-date": date,
        "x-ms-version": API_VERSION,
        "Authorization": f"SharedKey {account}:{signature.decode()}",
    }
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.request("PUT", f"{url.path}?restype=container", body=b"", headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    if resp.status == 201 or (resp.status == 409 and "ContainerAlreadyExists" in body):
        return 0
    print(f"creating container {container}: {resp.status} {resp.reason}: {body}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
