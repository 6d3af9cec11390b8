#!/usr/bin/env python3
"""--http-threads N: every libmicrohttpd worker is woken by the router's
100 ms poke (http_poke in src/http.c).

libmicrohttpd 0.9.75 has a stall: when one epoll_wait returns a full
batch of 128 events, it waits again with the full timeout before
handling them, so those 128 requests sit unanswered until something else
happens on that worker. The poke (a throwaway connection) is that
something. MHD gives an added connection to worker (fd % N), and the poke
socket used to get the same fd number every time, so only one worker was
ever poked.

The test makes the stall happen on purpose, on every worker at once: it
keeps idle keep-alive connections, finds which worker serves each (the
gateway's fd number for it, from /proc), stops the gateway with SIGSTOP,
sends one request on exactly 128 connections of each worker, and lets it
go on with SIGCONT. Every worker then wakes to exactly 128 ready
connections, and all requests must be answered within a few seconds (a
stalled worker waits for its connection timeout, 20 s here)."""

import asyncio
import os
import re
import signal
import time

from gwlib import BodyReader, Gateway, check, diag, open_stream, read_head, run

BATCH = 128          # libmicrohttpd's MAX_EVENTS for one epoll_wait
BOUND = 3.0          # seconds for every answer; a stall lasts --http-timeout
HTTP_TIMEOUT = 20
MAX_CONNECTIONS = 1200


def gateway_fds_by_peer_port(pid, port):
    """{client port: the gateway's fd for that TCP connection}."""
    inode_fd = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inode_fd[m.group(1)] = int(name)
    out = {}
    with open(f"/proc/{pid}/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            local_port = int(p[1].split(":")[1], 16)
            remote_port = int(p[2].split(":")[1], 16)
            if local_port == port and p[9] in inode_fd:
                out[remote_port] = inode_fd[p[9]]
    return out


def wait_stopped(pid, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state in ("T", "t"):
            return True
        time.sleep(0.005)
    return False


def request_bytes(port):
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def answer(reader, timeout):
    head = await read_head(reader, timeout)
    await asyncio.wait_for(BodyReader(reader, head).read_all(), timeout)
    return head.status


async def keepalive(gw):
    reader, writer = await open_stream(gw.port)
    writer.write(request_bytes(gw.port))
    await writer.drain()
    check(await answer(reader, 5) == 200, "GET /healthz on a fresh connection")
    return reader, writer


async def stall_every_worker(workers):
    with Gateway("--http-threads", workers, "--http-timeout", HTTP_TIMEOUT) as gw:
        conns, by_worker = [], {w: [] for w in range(workers)}
        try:
            # open idle keep-alive connections until every worker has a batch
            while min(len(v) for v in by_worker.values()) < BATCH:
                check(len(conns) < MAX_CONNECTIONS,
                      f"{len(conns)} connections and still not {BATCH} per worker: "
                      f"{ {w: len(v) for w, v in by_worker.items()} }")
                new = await asyncio.gather(*(keepalive(gw) for _ in range(64)))
                fds = gateway_fds_by_peer_port(gw.pid, gw.port)
                for r, w in new:
                    cport = w.get_extra_info("sockname")[1]
                    check(cport in fds, f"no gateway fd for client port {cport}")
                    by_worker[fds[cport] % workers].append((r, w))
                conns += new
            chosen = [c for w in range(workers) for c in by_worker[w][:BATCH]]
            os.kill(gw.pid, signal.SIGSTOP)
            try:
                check(wait_stopped(gw.pid), "the gateway did not stop on SIGSTOP")
                for _, w in chosen:
                    w.write(request_bytes(gw.port))
                await asyncio.gather(*(w.drain() for _, w in chosen))
                await asyncio.sleep(0.2)  # loopback delivers at once; be generous
            finally:
                os.kill(gw.pid, signal.SIGCONT)
            t0 = time.monotonic()

            async def timed(r):
                try:
                    st = await answer(r, BOUND + 1)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
                    return None, type(e).__name__
                return time.monotonic() - t0, st

            got = await asyncio.gather(*(timed(r) for r, _ in chosen))
            late = {}
            for i, (secs, st) in enumerate(got):
                if secs is None or secs > BOUND or st != 200:
                    late.setdefault(i // BATCH, []).append(st if secs is None else f"{secs:.1f}s/{st}")
            slowest = max((s for s, _ in got if s is not None), default=None)
            diag(f"{workers} workers x {BATCH} requests: slowest answer "
                 f"{'none' if slowest is None else f'{slowest:.2f} s'}, {len(conns)} connections open")
            check(not late, "requests not answered within "
                  f"{BOUND} s, by worker: { {w: f'{len(v)} (e.g. {v[:2]})' for w, v in late.items()} }")
        finally:
            for _, w in conns:
                w.transport.abort()


async def test_two_workers():
    "--http-threads 2: 128 requests arriving at once on each worker are all answered within 3 s"
    await stall_every_worker(2)


async def test_three_workers():
    "--http-threads 3: the same on three workers"
    await stall_every_worker(3)


if __name__ == "__main__":
    raise SystemExit(run([test_two_workers, test_three_workers], timeout=30))
