#!/usr/bin/env python3
"""Several gateways, one bus: --redis against a redis-server of the test's
own (127.0.0.1, an ephemeral port, no persistence, stopped by pid).
Publishes on one node reach every transport on another with the same ids
and epoch, clients hop between nodes with their cursors, a node killed
mid-stream loses its clients nothing once they resume on another, and Redis killed
mid-stream means 503s and a degraded /healthz, then the gap when it comes
back without its data. Every scenario checks the exact ids: nothing lost,
twice or out of order. A missing redis-server fails (scripts/setup
installs it), it is never skipped."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from gwlib import (Gateway, LongPollClient, MuxClient, PollClient, SSEClient, WSClient, check,
                   expect_eq, expect_error, get, ids_problem, publish, run)


class RedisServer:
    """redis-server on 127.0.0.1 at a free port, in a temporary folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="anypush-t-redis-")
        self.port = self._free_port()
        self.proc = None
        self.start()

    @staticmethod
    def _free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def start(self):
        exe = shutil.which("redis-server")
        check(exe is not None, "redis-server is not installed (scripts/setup installs it)")
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("redis-server did not answer within 5 s")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def node(redis):
    return Gateway("--redis", redis.url())


def publish_n(gw, ch, first, last):
    """Publish ids first..last through gw; returns the epoch."""
    epoch = None
    for i in range(first, last + 1):
        st, body = publish(gw, ch, {"n": i})
        expect_eq(st, 201, f"publish {i} to {ch}: {body!r}")
        expect_eq(body["id"], i, f"publish {i}: its id")
        epoch = epoch or body["epoch"]
        expect_eq(body["epoch"], epoch, f"publish {i}: its epoch")
    return epoch


CLIENTS = {"poll": PollClient, "longpoll": LongPollClient, "sse": SSEClient, "ws": WSClient}
_starting = []


async def _quiet_start(c):
    """What a client receives is checked by the test: a long poll aborted
    before its first reply is no failure of its own."""
    try:
        await c.start(timeout=30)
    except AssertionError:
        pass


async def begin(cls, gw, ch, since):
    """A started client. A long poll with a cursor is "subscribed" only
    at its first reply, which waits for news: it is started in the
    background, its request given a moment to arrive."""
    c = cls(gw, ch, since=since)
    if cls is not LongPollClient:
        return await c.start()
    _starting.append(asyncio.create_task(_quiet_start(c)))
    await asyncio.sleep(0.3)
    return c


async def test_four_transports_across_nodes():
    "publishes on node B reach poll, long-poll, SSE and WebSocket clients on node A: same ids, same epoch"
    with RedisServer() as r, node(r) as a, node(r) as b:
        subs = {k: await begin(cls, a, "x", "0") for k, cls in CLIENTS.items()}
        epoch = publish_n(b, "x", 1, 30)
        for k, s in subs.items():
            await s.wait_count(30, 10)
            await asyncio.sleep(0.2)
            problem = ids_problem(s.ids(), list(range(1, 31)))
            check(problem is None, f"{k} on node A: {problem}")
            epochs = {m.get("epoch") for m in s.messages}
            check(epochs in ({epoch}, {None}), f"{k}: epochs {epochs}, want {epoch}")
            check(not s.gaps, f"{k}: gaps {s.gaps}")
            s.abort()


async def test_hop_between_nodes_with_cursor():
    "a client of each transport hops A -> B -> A mid-stream with its cursor, publishes on the other node: nothing lost or twice"
    with RedisServer() as r, node(r) as a, node(r) as b:
        publish_n(a, "hop", 1, 10)
        on_b = {}
        for k, cls in CLIENTS.items():
            s = await begin(cls, a, "hop", "0")
            await s.wait_count(10, 10)
            s.abort()
            problem = ids_problem(s.ids(), list(range(1, 11)))
            check(problem is None, f"{k} on A: {problem}")
            on_b[k] = await begin(cls, b, "hop", s.cursor)
        publish_n(a, "hop", 11, 15)
        on_a = {}
        for k, t in on_b.items():
            await t.wait_count(5, 10)
            t.abort()
            problem = ids_problem(t.ids(), list(range(11, 16)))
            check(problem is None, f"{k} after hopping to B: {problem}")
            on_a[k] = await begin(CLIENTS[k], a, "hop", t.cursor)
        publish_n(b, "hop", 16, 18)
        for k, t in on_a.items():
            await t.wait_count(3, 10)
            await asyncio.sleep(0.1)
            t.abort()
            problem = ids_problem(t.ids(), list(range(16, 19)))
            check(problem is None, f"{k} back on A: {problem}")


async def test_ws_publish_acks_from_redis():
    "/ws publishes on node A are acked once Redis stored them (ids, epoch, replayed, conflict) and reach node B"
    with RedisServer() as r, node(r) as a, node(r) as b:
        sse = await SSEClient(b, "wsp", since="0").start()
        mux = await MuxClient(a).start()
        acks = [await mux.publish("wsp", {"n": i}) for i in range(1, 5)]
        acks.append(await mux.publish_binary("wsp", b"\x00\n\xff"))
        expect_eq([f.get("id") for f in acks], [1, 2, 3, 4, 5], "ack ids")
        epoch = acks[0].get("epoch")
        check(all(f.get("epoch") == epoch for f in acks), f"ack epochs: {acks}")
        first = await mux.publish("wsp", {"n": 6}, key="k-6")
        again = await mux.publish("wsp", {"n": 6}, key="k-6")
        expect_eq((first.get("id"), first.get("replayed")), (6, None), "the keyed publish")
        expect_eq((again.get("id"), again.get("replayed")), (6, True), "its retry")
        other = await mux.op({"op": "publish", "channel": "wsp", "data": {"n": 7}, "key": "k-6"})
        expect_eq((other.get("type"), other.get("code")), ("error", "idempotency_conflict"),
                  f"the key for another message: {other!r}")
        await sse.wait_count(6, 10)
        await asyncio.sleep(0.2)
        problem = ids_problem(sse.ids(), list(range(1, 7)))
        check(problem is None, f"SSE on node B: {problem}")
        check(not mux.problems, f"/ws client: {mux.problems}")
        r.kill()
        down = await mux.op({"op": "publish", "channel": "wsp", "data": 8}, timeout=10)
        expect_eq((down.get("type"), down.get("code")), ("error", "redis_unavailable"),
                  f"a /ws publish while Redis is down: {down!r}")
        sse.abort()
        mux.abort()


async def test_node_killed_mid_stream():
    "node A killed (SIGKILL) mid-stream: its clients of every transport resume on node B with their cursors and lose nothing"
    with RedisServer() as r, Gateway("--redis", r.url(), check_exit=False) as a, node(r) as b:
        first = {k: await begin(cls, a, "kill", "0") for k, cls in CLIENTS.items()}
        publish_n(b, "kill", 1, 15)
        for k, c in first.items():
            await c.wait_count(15, 10)
        a.signal(signal.SIGKILL)
        expect_eq(a.wait_exit(5), -signal.SIGKILL, "node A killed")
        for c in first.values():
            c.abort()
        publish_n(b, "kill", 16, 30)  # while its clients are away
        second = {k: await begin(CLIENTS[k], b, "kill", c.cursor) for k, c in first.items()}
        publish_n(b, "kill", 31, 40)
        for k, c in second.items():
            await c.wait_count(40 - len(first[k].messages), 10)
            await asyncio.sleep(0.1)
            c.abort()
            problem = ids_problem(first[k].ids() + c.ids(), list(range(1, 41)))
            check(problem is None, f"{k}, before and after the kill: {problem}")


async def test_redis_down_then_back_empty():
    "Redis killed: publishes 503 JSON, /healthz degraded, subscribers stay; back without its data: a gap, then new ids"
    with RedisServer() as r, node(r) as a, node(r) as b:
        s = await SSEClient(a, "down", since="0").start()
        old = publish_n(b, "down", 1, 3)
        await s.wait_count(3, 10)
        r.kill()
        deadline = time.monotonic() + 5
        while True:
            st, _, body = get(b, "/healthz")
            if st == 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        expect_eq(st, 503, "healthz while Redis is down")
        expect_eq(json.loads(body).get("status"), "degraded", "healthz body")
        st, body = publish(b, "down", {"n": 4})
        expect_eq(st, 503, f"publish while Redis is down: {body!r}")
        expect_eq(body["error"]["code"], "redis_unavailable", "its error code")
        check(s.end_reason is None, f"the SSE subscriber was dropped: {s.describe()}")
        r.start()
        for gw in (a, b):
            deadline = time.monotonic() + 5
            while get(gw, "/healthz")[0] != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            expect_eq(get(gw, "/healthz")[0], 200, "healthz once Redis is back")
        new = publish_n(b, "down", 1, 2)
        check(new != old, "Redis came back empty, yet the epoch is the old one")
        await s.wait_count(5, 10)
        expect_eq(len(s.gaps), 1, f"gaps after Redis lost the channel: {s.describe()}")
        expect_eq([(m["id"], m["epoch"]) for m in s.messages],
                  [(1, old), (2, old), (3, old), (1, new), (2, new)], "ids and epochs")
        s.abort()


async def test_resume_older_than_the_ring():
    "a cursor older than a node's ring (node A keeps 5) gets the ids between from Redis, then the ring: each once, in order, no gap, every transport"
    with RedisServer() as r, node(r) as b, Gateway("--redis", r.url(), "--history-size", "5") as a:
        keep = await SSEClient(a, "old").start()  # keeps the channel in use on A
        epoch = publish_n(b, "old", 1, 20)
        await keep.wait_count(20, 15)
        st, _, body = get(a, "/channels/old/info")
        expect_eq(json.loads(body)["oldest_id"], 16, f"A's ring: {body!r}")
        subs = {k: await begin(cls, a, "old", f"{epoch}:3") for k, cls in CLIENTS.items()}
        for k, s in subs.items():
            await s.wait_count(17, 15)
        publish_n(b, "old", 21, 22)
        for k, s in subs.items():
            await s.wait_count(19, 15)
            await asyncio.sleep(0.1)
            s.abort()
            problem = ids_problem(s.ids(), list(range(4, 23)))
            check(problem is None, f"{k} resumed at 3 on A: {problem}")
            check(not s.gaps, f"{k}: gaps {s.gaps}, yet Redis had them all")
        keep.abort()


async def test_cursor_past_redis_head_is_a_gap():
    "a made-up cursor far past Redis' head is the gap the embedded bus reports, on every transport; then new ids come"
    with RedisServer() as r, node(r) as a, node(r) as b:
        epoch = publish_n(b, "far", 1, 3)
        subs = {k: await begin(cls, a, "far", f"{epoch}:500") for k, cls in CLIENTS.items()}
        for k, s in subs.items():
            deadline = time.monotonic() + 15
            while not s.gaps and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            expect_eq(len(s.gaps), 1, f"{k}: a cursor Redis never gave: {s.describe()}")
        publish_n(b, "far", 4, 5)
        for k, s in subs.items():
            await s.wait_count(5, 15)
            await asyncio.sleep(0.1)
            s.abort()
            problem = ids_problem(s.ids(), list(range(1, 6)))
            check(problem is None, f"{k} after the gap: {problem}")


async def test_first_poll_waits_for_the_sync():
    "a poll or long poll reaching a node that has not synced the channel answers with Redis' epoch in next, and a tail poll then gets what follows"
    with RedisServer() as r, node(r) as a, node(r) as b:
        epoch = publish_n(b, "first", 1, 4)
        st, _, body = get(a, "/channels/first?transport=poll")
        expect_eq(st, 200, f"the first poll on A: {body!r}")
        reply = json.loads(body)
        expect_eq(reply["next"], f"{epoch}:4", f"its next: {reply!r}")
        expect_eq(reply["messages"], [], "a tail poll gets nothing old")
        publish_n(b, "first", 5, 5)
        deadline = time.monotonic() + 10
        got = []
        while time.monotonic() < deadline:
            st, _, body = get(a, f"/channels/first?transport=poll&since={reply['next']}")
            got = [m["id"] for m in json.loads(body)["messages"]]
            if got:
                break
            await asyncio.sleep(0.05)
        expect_eq(got, [5], "what was published after the first poll")
        # a long poll that times out on a channel new to A: Redis' epoch too
        epoch = publish_n(b, "first-lp", 1, 2)
        st, _, body = get(a, "/channels/first-lp?transport=longpoll&timeout=1", timeout=15)
        expect_eq(st, 200, f"the first long poll on A: {body!r}")
        expect_eq(json.loads(body)["next"], f"{epoch}:2", f"its next: {body!r}")


if __name__ == "__main__":
    run([test_four_transports_across_nodes, test_hop_between_nodes_with_cursor,
         test_ws_publish_acks_from_redis, test_node_killed_mid_stream,
         test_redis_down_then_back_empty, test_resume_older_than_the_ring,
         test_cursor_past_redis_head_is_a_gap, test_first_poll_waits_for_the_sync],
        budget=180, timeout=40)
