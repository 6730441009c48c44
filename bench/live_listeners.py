"""Thousands of listeners waiting on one live playlist, for the live benchmark.

    python -m bench.live_listeners JOB_JSON        (bench/live.py starts several)

JOB: {"host", "port", "path" (a media playlist), "connections", "pps" (parts per
segment), "timeout" (seconds a round may take)}. The process opens its connections
(HTTP/1.1 keep-alive, through a raw asyncio protocol: a listener costs the client a few
microseconds per answer, so that what is measured is the server), prints
{"connected": N, "failed": M}, then takes one command per line on stdin:

- {"part": G}: every connection asks for part G (global index from 0: _HLS_msn =
  G // pps + 1, _HLS_part = G % pps) with a blocking reload, all written in one pass;
- {"at": EPOCH}: at EPOCH, every connection sends a plain GET of `path`, all written in
  one pass (the same fan-out without holding, which any server can answer);
- {"stop": true}: close everything and exit.

After each round (every answer in, or the timeout), it prints one JSON line: the send
times and the arrival times (of the first byte of each answer, epoch seconds) of its
connections, the count of answers other than 200 (by status), and whether it timed out.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any


class Listener(asyncio.Protocol):
    def __init__(self, owner: Run) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.need = -1  # body bytes of the answer (-1: reading its headers)
        self.chunked = False
        self.waiting = False  # a request is out
        self.t_first = 0.0
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost += 1
        if self.waiting:
            self.waiting = False
            self.owner.settled()

    def send(self, request: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.t_first = 0.0
        self.waiting = True
        self.owner.sent.append(time.time())
        self.transport.write(request)
        return True

    def data_received(self, data: bytes) -> None:
        if not self.t_first:
            self.t_first = time.time()
        self.buf += data
        while self._parse():
            self.waiting = False
            self.owner.arrived.append(self.t_first)
            if self.status != 200:
                self.owner.statuses[self.status] = self.owner.statuses.get(self.status, 0) + 1
            self.t_first = time.time() if self.buf else 0.0
            self.owner.settled()

    def _parse(self) -> bool:
        """Consume one whole answer from the buffer if it is there (Content-Length or
        chunked framing); True when one was."""
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = self.buf[:end]
            self.status = int(head[9:12])
            self.need = 0
            self.chunked = False
            for line in head.split(b"\r\n")[1:]:
                name = line[:line.find(b":")].strip().lower()
                if name == b"content-length":
                    self.need = int(line[line.find(b":") + 1:])
                elif name == b"transfer-encoding" and b"chunked" in line.lower():
                    self.chunked = True
            self.buf = self.buf[end + 4:]
        if not self.chunked:
            if len(self.buf) < self.need:
                return False
            self.buf = self.buf[self.need:]
            self.need = -1
            return True
        pos = 0
        while True:  # chunks: SIZE\r\nDATA\r\n ... 0\r\n\r\n
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return False
            size = int(self.buf[pos:eol].split(b";")[0], 16)
            if size == 0:
                if len(self.buf) < eol + 4:
                    return False
                self.buf = self.buf[eol + 4:]
                self.need = -1
                return True
            pos = eol + 2 + size + 2
            if len(self.buf) < pos:
                return False


class Run:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.listeners: list[Listener] = []
        self.lost = 0
        self.sent: list[float] = []
        self.arrived: list[float] = []
        self.statuses: dict[int, int] = {}
        self.outstanding = 0
        self.done: asyncio.Future[None] | None = None
        host, port = job["host"], job["port"]
        self.head = f" HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: gzip\r\n\r\n".encode()

    async def connect(self) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        failed = 0
        n = int(self.job["connections"])
        batch = 250
        for start in range(0, n, batch):
            results = await asyncio.gather(*(
                loop.create_connection(lambda: Listener(self), self.job["host"],
                                       self.job["port"])
                for _ in range(min(batch, n - start))), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    failed += 1
                else:
                    self.listeners.append(r[1])
        return len(self.listeners), failed

    def settled(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def round(self, command: dict[str, Any]) -> dict[str, Any]:
        path = self.job["path"]
        if "part" in command:
            g, pps = int(command["part"]), int(self.job["pps"])
            path = f"{path}?_HLS_msn={g // pps + 1}&_HLS_part={g % pps}"
        else:
            delay = float(command["at"]) - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        request = b"GET " + path.encode() + self.head
        self.sent, self.arrived, self.statuses = [], [], {}
        self.done = asyncio.get_running_loop().create_future()
        # No answer can come in while this loop runs (nothing yields), so count first.
        self.outstanding = sum(listener.send(request) for listener in self.listeners)
        timed_out = False
        if self.outstanding > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self.done), float(self.job["timeout"]))
            except TimeoutError:
                timed_out = True
        return {"sent": self.sent, "arrived": self.arrived, "statuses": self.statuses,
                "timed_out": timed_out, "lost": self.lost}


async def run(job: dict[str, Any]) -> None:
    r = Run(job)
    connected, failed = await r.connect()
    print(json.dumps({"connected": connected, "failed": failed}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command.get("stop"):
                break
            print(json.dumps(await r.round(command)), flush=True)
    finally:
        for listener in r.listeners:
            if listener.transport is not None:
                listener.transport.close()


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = int(job["connections"]) + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
    try:
        import uvloop

        uvloop.run(run(job))
    except ImportError:
        asyncio.run(run(job))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
