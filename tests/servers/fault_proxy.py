"""Test-only TCP proxy that injects transport faults between a client and one upstream server.

Each connection through it passes its bytes on, and draws a fault from a seeded random schedule at
checkpoints along the way: one within its first 4 KiB, then at log-uniform gaps of 64 bytes to
``--max-offset`` (median 45 KiB, mean 2.4 MiB by default), in the request (client to server) or the response
direction. So small objects and the middle of large bodies both get hit, and a long-lived connection (a
pooled SSH session) keeps drawing faults however much it carries. Each fault is drawn when its checkpoint is
reached, with the rates then in force, so switching the rates takes effect at once. The faults:

- ``reset``: the connection is reset (RST, via SO_LINGER 0) at that byte;
- ``drop``: both sides are closed (FIN, or RST for half of them) at that byte, as a server dying mid-body;
- ``stall``: nothing more is passed on in that direction until the client gives up;
- ``delay``: forwarding pauses for ``--delay`` seconds, then goes on;
- ``handshake_drop`` (drawn only at a connection's first checkpoint): a reset or drop within its first 4 KiB,
  which for SSH is the handshake;
- ``http_500``, ``http_503``, ``http_429`` (``--http`` only): a request is answered by the proxy itself with
  that status and ``Connection: close``; it never reaches the server. Drawn for every request, not only a
  connection's first, so pooled keep-alive connections get them too.

The rates are the chances of each fault at a checkpoint (byte faults) or per request (status faults). The
counts are faults that happened: a checkpoint the connection never reaches draws nothing.

Usage: fault_proxy.py --upstream HOST:PORT [--seed N] [--rates reset=0.05,drop=0.05,...] [--http]
       [--delay SECONDS] [--max-offset BYTES] [--lifetime SECONDS]

The first line on stdout is JSON, ``{"port": P, "control": C}``: the proxy listens on 127.0.0.1:P and takes
commands on 127.0.0.1:C, one line each, answered with one line of JSON:

- ``rates reset=0.1,http_503=0.05`` sets the rates (unnamed kinds: 0); ``clean`` sets them all to 0;
- ``stats`` answers the counts: connections, requests (``--http``), and faults by kind;
- ``cut`` resets every open connection now (counted as ``cut``);
- ``stop`` stops the proxy.

It stops by itself after ``--lifetime`` seconds (default 900), and prints its counts as its last line,
``injected: {...}``. Stdlib only; never use it outside tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import socket
import struct
from collections import Counter

BYTE_FAULTS = ("reset", "drop", "stall", "delay", "handshake_drop")
STATUS_FAULTS = {
    "http_500": "500 Internal Server Error",
    "http_503": "503 Service Unavailable",
    "http_429": "429 Too Many Requests",
}
KINDS = BYTE_FAULTS + tuple(STATUS_FAULTS)
HANDSHAKE_BYTES = 4096
READ_SIZE = 64 << 10


class Checkpoint:
    """Where a connection next draws a byte fault: in which direction, after how many bytes in all, and
    whether it is the connection's first (within its first 4 KiB, the only one that may draw a handshake
    drop). The fault is drawn when the checkpoint is reached, with the rates then in force."""

    def __init__(self, direction: str, offset: int, first: bool) -> None:
        self.direction, self.offset, self.first = direction, offset, first


class Proxy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.upstream = args.upstream
        self.random = random.Random(args.seed)
        self.rates = dict.fromkeys(KINDS, 0.0)
        self.http = args.http
        self.delay = args.delay
        self.max_offset = args.max_offset
        self.counts: Counter[str] = Counter()
        self.open: set[Connection] = set()
        self.stopped = asyncio.Event()

    def set_rates(self, spec: str) -> None:
        rates = dict.fromkeys(KINDS, 0.0)
        for item in filter(None, spec.split(",")):
            kind, _, rate = item.partition("=")
            if kind not in rates:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
            rates[kind] = float(rate)
        if sum(rates[kind] for kind in BYTE_FAULTS) > 1 or sum(rates[kind] for kind in STATUS_FAULTS) > 1:
            raise ValueError("the rates of byte faults, and of status faults, must each add up to at most 1")
        self.rates = rates

    def draw(self, kinds) -> str | None:
        """One of `kinds` with its rate, or None."""
        roll = self.random.random()
        for kind in kinds:
            roll -= self.rates[kind]
            if roll < 0:
                return kind
        return None

    def plan(self, sent: dict[str, int] | None) -> Checkpoint:
        """The first checkpoint of a new connection (`sent` None), or the next one of a connection that has
        passed on `sent` bytes in each direction."""
        direction = self.random.choice(("request", "response"))
        if sent is None:
            return Checkpoint(direction, self.random.randrange(HANDSHAKE_BYTES), first=True)
        gap = int(math.exp(self.random.uniform(math.log(64), math.log(self.max_offset))))
        return Checkpoint(direction, sent[direction] + gap, first=False)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        connection = Connection(self, reader, writer)
        self.open.add(connection)
        try:
            await connection.run()
        finally:
            self.open.discard(connection)
            connection.close(abortive=False)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := (await reader.readline()).decode().strip():
                writer.write((json.dumps(self.command(line)) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the proxy is stopping
        finally:
            writer.close()

    def command(self, line: str) -> dict:
        command, _, argument = line.partition(" ")
        try:
            if command == "rates":
                self.set_rates(argument)
            elif command == "clean":
                self.set_rates("")
            elif command == "cut":
                for connection in list(self.open):
                    self.counts["cut"] += 1
                    connection.close(abortive=True)
            elif command == "stop":
                self.stopped.set()
            elif command != "stats":
                raise ValueError(f"unknown command {command!r}")
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True, "counts": dict(self.counts), "rates": self.rates}


class Connection:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.sent = {"request": 0, "response": 0}
        self.checkpoint = proxy.plan(None)
        self.closed = asyncio.Event()

    async def run(self) -> None:
        try:
            self.upstream = await asyncio.open_connection(*self.proxy.upstream)
        except OSError:
            return
        tasks = [
            asyncio.ensure_future(self.pump(self.client[0], self.upstream[1], "request")),
            asyncio.ensure_future(self.pump(self.upstream[0], self.client[1], "response")),
            asyncio.ensure_future(self.closed.wait()),
        ]
        # Either side closing ends the connection: neither HTTP clients nor SSH half-close.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()

    def close(self, abortive: bool) -> None:
        """Closes both sides: with RST if `abortive`, else with FIN."""
        self.closed.set()
        for _, writer in filter(None, [self.client, self.upstream]):
            sock = writer.get_extra_info("socket")
            if abortive and sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                writer.transport.abort()
            else:
                try:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                except OSError:
                    pass  # the other end is gone already
                writer.close()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        """Forwards one direction, drawing a fault at each of the connection's checkpoints on the way."""
        requests = HttpRequests(self) if self.proxy.http and direction == "request" else None
        while data := await reader.read(READ_SIZE):
            answered = False
            if requests is not None:
                data, answered = requests.feed(data)
            while (point := self.checkpoint).direction == direction and point.offset < self.sent[direction] + len(data):
                cut = point.offset - self.sent[direction]
                head, data = data[:cut], data[cut:]
                writer.write(head)
                await writer.drain()
                self.sent[direction] += len(head)
                self.checkpoint = self.proxy.plan(self.sent)
                kind = self.proxy.draw(BYTE_FAULTS if point.first else BYTE_FAULTS[:-1])
                if kind is None:
                    continue
                self.proxy.counts[kind] += 1
                if kind == "delay":
                    await asyncio.sleep(self.proxy.delay)
                elif kind == "stall":
                    # Nothing more is passed on. Reading on notices the client giving up; a server that
                    # closes meanwhile leaves the client waiting until it gives up.
                    while await reader.read(READ_SIZE):
                        pass
                    if direction == "response":
                        await self.closed.wait()
                    return
                else:
                    self.close(abortive=kind == "reset" or self.proxy.random.random() < 0.5)
                    return
            writer.write(data)
            await writer.drain()
            self.sent[direction] += len(data)
            if answered:
                await requests.respond()
                return


class HttpRequests:
    """Follows the requests on one connection (HTTP/1.1 with Content-Length bodies), to answer some itself.

    A request that draws a status fault is read whole, answered by the proxy, and the connection closed.
    A chunked or otherwise unframed request ends the following: the rest of the connection passes through.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.head = b""
        self.body_left = 0
        self.answer: str | None = None
        self.following = True

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Takes what the client sent next: what of it to pass on, and whether a request now awaits the
        proxy's answer. A request's head is held back until it is whole, so that no part of a request the
        proxy answers reaches the server."""
        out = []
        while data and self.following:
            if self.body_left:
                taken = min(self.body_left, len(data))
                self.body_left -= taken
                if self.answer is None:
                    out.append(data[:taken])
                data = data[taken:]
            else:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return b"".join(out), False
                head, data = self.head[: end + 4], self.head[end + 4 :]
                self.head = b""
                self.start(head)
                if self.answer is None:
                    out.append(head)
            if self.answer is not None and not self.body_left:
                return b"".join(out), True
        out.append(data)
        return b"".join(out), False

    def start(self, head: bytes) -> None:
        proxy = self.connection.proxy
        proxy.counts["requests"] += 1
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        if "chunked" in headers.get("transfer-encoding", ""):
            self.following = False
            return
        self.body_left = int(headers.get("content-length") or 0)
        self.answer = proxy.draw(STATUS_FAULTS)

    async def respond(self) -> None:
        """Answers the request instead of the server, and closes the connection."""
        kind, writer = self.answer, self.connection.client[1]
        self.connection.proxy.counts[kind] += 1
        body = f"<Error><Code>InjectedFault</Code><Message>{kind} from fault_proxy.py</Message></Error>".encode()
        writer.write(
            f"HTTP/1.1 {STATUS_FAULTS[kind]}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"Retry-After: 0\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        self.connection.close(abortive=False)


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, type=host_port)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rates", default="")
    parser.add_argument("--http", action="store_true", help="follow HTTP requests, for the status faults")
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--max-offset", type=int, default=32 << 20)
    parser.add_argument("--lifetime", type=float, default=900)
    args = parser.parse_args()
    proxy = Proxy(args)
    proxy.set_rates(args.rates)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    control = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    ports = {"port": server.sockets[0].getsockname()[1], "control": control.sockets[0].getsockname()[1]}
    print(json.dumps(ports), flush=True)
    try:
        await asyncio.wait_for(proxy.stopped.wait(), args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()
    control.close()
    for connection in list(proxy.open):
        connection.close(abortive=True)
    print("injected:", json.dumps(dict(proxy.counts)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
