"""Thousands of listeners waiting on one live playlist, for the live benchmark.

    python -m bench.live_listeners [bench.live options]   the listeners part of bench/live.py
                                                          alone (origin, then nginx)
    python -m bench.live_listeners JOB_JSON               one listener process (bench/live.py
                                                          starts several)

JOB: {"host", "port", "path" (a media playlist), "connections", "pps" (parts per
segment), "timeout" (seconds a round may take), "clock" (optional, below)}. The process
opens its connections (HTTP/1.1 keep-alive, plain non-blocking sockets on one epoll, no
event-loop framework: a listener costs the client a recvmsg and a few comparisons per
answer, so that what is measured is the server), prints {"connected": N, "failed": M},
then takes one command per line on stdin:

- {"part": G}: every connection asks for part G (global index from 0: _HLS_msn =
  G // pps + 1, _HLS_part = G % pps) with a blocking reload, all written in one pass;
- {"at": EPOCH}: at EPOCH, every connection sends a plain GET of `path`, all written in
  one pass (the same fan-out without holding, which any server can answer);
- {"stop": true}: close everything and exit.

After each round (every answer in, or the timeout), it prints one JSON line: the send
times and the arrival times (of the first byte of each answer, epoch seconds) of its
connections, the count of answers other than 200 (by status), and whether it timed out.

Two clocks for an arrival: "kernel", the moment the answer's first bytes reached the
listener's socket (the kernel's receive timestamp, SO_TIMESTAMPING, read with each
recvmsg), and "user", the moment this process read them. With thousands of sockets on
the same two cores as the server, the user clock adds the client's own queue (the last
socket is read after all the others), which is the bench's cost, not the server's.
With the kernel clock the process reads only every 20 ms (the kernel has stamped each
arrival), so that while the server answers the cores are left to it, as they would be
with listeners on other machines. "arrived" is the clock the job asks for (default kernel; the environment variable
SORI_LISTEN_CLOCK=user chooses the other when bench/live.py starts the processes);
"arrived_kernel" and "arrived_user" are both always there.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import struct
import sys
import time
from typing import Any

SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
_CMSG = socket.CMSG_SPACE(48)  # struct scm_timestamping: three timespecs
_READ = 1 << 18
LAZY_READ = 0.02  # seconds between reads when the kernel clock is used


class Conn:
    """One keep-alive connection and the answer it is reading."""

    __slots__ = ("sock", "buf", "need", "chunked", "status", "waiting", "t_kernel", "t_user")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.need = -1  # body bytes of the answer (-1: reading its headers)
        self.chunked = False
        self.status = 0
        self.waiting = False  # a request is out
        self.t_kernel = 0.0  # arrival of the first bytes of the answer being read
        self.t_user = 0.0

    def parse(self) -> bool:
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


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            if sec:
                return float(sec + nsec / 1e9)
    return 0.0


class Run:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.clock = job.get("clock") or os.environ.get("SORI_LISTEN_CLOCK", "kernel")
        self.conns: dict[int, Conn] = {}
        self.poll = select.epoll()
        self.lost = 0
        self.stamped = True  # every arrival had a kernel timestamp
        host, port = job["host"], job["port"]
        self.head = f" HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: gzip\r\n\r\n".encode()

    def connect(self) -> tuple[int, int]:
        failed = 0
        addr = (self.job["host"], int(self.job["port"]))
        for _ in range(int(self.job["connections"])):
            try:
                sock = socket.create_connection(addr, timeout=10)
            except OSError:
                failed += 1
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING,
                                SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
            except OSError:
                self.stamped = False
            sock.setblocking(False)
            self.conns[sock.fileno()] = Conn(sock)
            self.poll.register(sock.fileno(), select.EPOLLIN)
        return len(self.conns), failed

    def _drop(self, fd: int) -> None:
        conn = self.conns.pop(fd)
        self.lost += 1
        self.poll.unregister(fd)
        conn.sock.close()

    def round(self, command: dict[str, Any]) -> dict[str, Any]:
        path = self.job["path"]
        if "part" in command:
            g, pps = int(command["part"]), int(self.job["pps"])
            path = f"{path}?_HLS_msn={g // pps + 1}&_HLS_part={g % pps}"
        else:
            delay = float(command["at"]) - time.time()
            if delay > 0:
                time.sleep(delay)
        request = b"GET " + path.encode() + self.head
        sent: list[float] = []
        kernel: list[float] = []
        user: list[float] = []
        statuses: dict[int, int] = {}
        outstanding = 0
        for fd, conn in list(self.conns.items()):
            try:
                conn.sock.send(request)
            except OSError:
                self._drop(fd)
                continue
            sent.append(time.time())
            conn.waiting = True
            conn.t_kernel = conn.t_user = 0.0
            outstanding += 1
        deadline = time.monotonic() + float(self.job["timeout"])
        timed_out = False
        lazy = self.clock != "user" and self.stamped
        while outstanding > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if lazy:
                # The kernel stamps each arrival; reading in batches leaves the cores to
                # the server while it answers.
                time.sleep(LAZY_READ)
            for fd, _event in self.poll.poll(min(left, 1.0)):
                found = self.conns.get(fd)
                if found is None:
                    continue
                conn = found
                try:
                    data, ancillary, _flags, _addr = conn.sock.recvmsg(_READ, _CMSG)
                except BlockingIOError:
                    continue
                except OSError:
                    data, ancillary = b"", []
                if not data:
                    if conn.waiting:
                        outstanding -= 1
                    self._drop(fd)
                    continue
                now = time.time()
                stamp = _kernel_time(ancillary)
                if not stamp:
                    self.stamped = False
                    stamp = now
                if not conn.t_user:
                    conn.t_kernel, conn.t_user = stamp, now
                conn.buf += data
                while conn.waiting and conn.parse():
                    conn.waiting = False
                    outstanding -= 1
                    kernel.append(conn.t_kernel)
                    user.append(conn.t_user)
                    if conn.status != 200:
                        statuses[conn.status] = statuses.get(conn.status, 0) + 1
        arrived = user if self.clock == "user" else kernel
        return {"sent": sent, "arrived": arrived, "arrived_kernel": kernel,
                "arrived_user": user, "clock": self.clock, "stamped": self.stamped,
                "statuses": statuses, "timed_out": timed_out, "lost": self.lost}

    def close(self) -> None:
        for conn in self.conns.values():
            conn.sock.close()
        self.poll.close()


def child(job: dict[str, Any]) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = int(job["connections"]) + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
    r = Run(job)
    try:
        connected, failed = r.connect()
        print(json.dumps({"connected": connected, "failed": failed}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("stop"):
                break
            print(json.dumps(r.round(command)), flush=True)
    finally:
        r.close()
    return 0


def standalone(argv: list[str]) -> int:
    """The listeners part of bench/live.py alone, once per clock (--clocks)."""
    from bench import live

    clocks = ["kernel", "user"]
    rest = []
    it = iter(argv)
    for a in it:
        if a == "--clocks":
            clocks = next(it).split(",")
        elif a.startswith("--clocks="):
            clocks = a.split("=", 1)[1].split(",")
        else:
            rest.append(a)
    for clock in clocks:
        os.environ["SORI_LISTEN_CLOCK"] = clock
        print(f"\n=== listeners, arrival times from the {clock} clock "
              f"({'kernel receive timestamp' if clock == 'kernel' else 'when the client read it'})",
              flush=True)
        sys.argv = [sys.argv[0], "--parts", "listeners", *rest]
        live.main()
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0].lstrip().startswith("{"):
        return child(json.loads(argv[0]))
    return standalone(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
