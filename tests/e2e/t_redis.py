#!/usr/bin/env python3
"""Several gateways, one bus: --redis against a redis-server of the test's
own (127.0.0.1, an ephemeral port, no persistence, stopped by pid).
Publishes on one node reach every transport on another with the same ids
and epoch, clients hop between nodes with their cursors, a node killed
mid-stream loses its clients nothing once they resume on another, and Redis killed
mid-stream means 503s and a degraded /healthz, then the gap when it comes
back without its data, or from a snapshot older than the last writes. info sums the subscribers of every node (a killed
node's vanish within the TTL) and knows channels not in use on the node
asked; the admin API deletes a channel and disconnects a client on every
node; a draining node refuses publishes with shutting_down; welcomes and
/ws subscribe acks on a node new to a channel carry Redis' epoch. Every
scenario checks the exact ids: nothing lost, twice or out of order. A missing redis-server fails (scripts/setup
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

import threading

from gwlib import (Gateway, LongPollClient, MuxClient, PollClient, Publisher, SSEClient, WSClient, check,
                   diag, expect_eq, expect_error, get, ids_problem, info, metrics, publish, publish_until,
                   request, run, wait_until)

NODE_TTL = 6.0  # redis_nodes.h REDIS_NODE_TTL_MS
DRAIN = 3.0     # server.c DRAIN_MS


class RedisServer:
    """redis-server on 127.0.0.1 at a free port, in a temporary folder;
    extra: more options, after (and so over) the defaults."""

    def __init__(self, extra=()):
        self.extra = list(extra)
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
             "--logfile", os.path.join(self.dir, "redis.log")] + self.extra,
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

    def command(self, line):
        """One inline command; its first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(line.encode() + b"\r\n")
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = c.recv(256)
                check(chunk, f"redis-server closed the connection on {line!r}")
                got += chunk
            return got.decode().strip()

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


async def test_redis_back_with_older_data():
    "Redis back from an older snapshot (ids 6..8 lost): every transport on both nodes gets one gap, then ids 1.. of a new epoch; none of the lost ids reused"
    with RedisServer() as r, node(r) as a, node(r) as b:
        subs = {(name, k): await begin(cls, gw, "rb", "0")
                for name, gw in (("A", a), ("B", b)) for k, cls in CLIENTS.items()}
        old = publish_n(b, "rb", 1, 5)
        expect_eq(r.command("SET t-redis-snapshot 1"), "+OK", "a key that only the snapshot holds")
        expect_eq(r.command("SAVE"), "+OK", "SAVE after id 5")
        publish_n(a, "rb", 6, 8)
        for key, s in subs.items():
            await s.wait_count(8, 15)
        # restarted from the snapshot: the channel's epoch, last id 5
        r.kill()
        r.start()
        # (the nodes may already have found the loss: the key shows that
        # Redis loaded the snapshot, whatever the channel holds by now)
        expect_eq(r.command("GET t-redis-snapshot").split(), ["$1", "1"], "Redis is back from the snapshot")
        for gw in (a, b):
            deadline = time.monotonic() + 10
            while get(gw, "/healthz")[0] != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            expect_eq(get(gw, "/healthz")[0], 200, "healthz once Redis is back")
        # the nodes' catch-up reads find Redis behind their rings and
        # move the channel to a new epoch (what info shows, from Redis)
        deadline = time.monotonic() + 15
        while info(a, "rb")["epoch"] == old and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        new = info(a, "rb")["epoch"]
        check(new != old, f"Redis lost ids 6..8, yet the channel keeps epoch {old}")
        expect_eq(info(b, "rb")["epoch"], new, "node B sees the same new epoch")
        publish_n(b, "rb", 1, 2)
        publish_n(a, "rb", 3, 3)
        want = [(i, old) for i in range(1, 9)] + [(i, new) for i in range(1, 4)]
        for (name, k), s in subs.items():
            await s.wait_count(11, 15)
            await asyncio.sleep(0.1)
            s.abort()
            got = [(m["id"], m.get("epoch", e)) for m, (_, e) in zip(s.messages, want)]
            expect_eq(got, want[:len(got)], f"{k} on node {name}: ids and epochs")
            expect_eq(len(s.messages), len(want), f"{k} on node {name}: {s.describe()}")
            expect_eq(len(s.gaps), 1, f"{k} on node {name}: one gap for the lost ids: {s.describe()}")
        # a client resuming with a cursor Redis lost: the gap, never the
        # new messages under the old ids
        late = await SSEClient(a, "rb", since=f"{old}:7").start()
        await late.wait_count(3, 15)
        await asyncio.sleep(0.1)
        late.abort()
        expect_eq([(m["id"], m["epoch"]) for m in late.messages], [(i, new) for i in range(1, 4)],
                  "a resume at a lost cursor")
        expect_eq(len(late.gaps), 1, f"its gap: {late.describe()}")


def counts(gw, ch):
    return info(gw, ch)["subscribers"]


async def wait_counts(gws, ch, want, timeout, what):
    """Every node's info of ch shows these subscriber counts, within timeout."""
    for gw in gws:
        await wait_until(lambda: counts(gw, ch) == want, timeout, 0.1,
                         f"{what}: {want} (last seen {counts(gw, ch)})")


def presence_events(c):
    return [(m["event"], m["data"]) for m in c.messages if m.get("event") in ("join", "leave")]


async def test_info_summed_over_nodes():
    "info on any node: Redis' epoch and ids (in use there or not) and every node's subscribers; a killed node's go within the TTL; joins and leaves cross nodes"
    with RedisServer() as r, Gateway("--redis", r.url(), check_exit=False) as a, node(r) as b, node(r) as c:
        epoch = publish_n(b, "quiet", 1, 3)
        for gw in (a, b, c):
            got = info(gw, "quiet")
            expect_eq((got["epoch"], got["last_id"], got["oldest_id"], got["retained"]), (epoch, 3, 1, 3),
                      "info of a channel in use on no node")
        none = info(a, "never")
        expect_eq((none["epoch"], none["last_id"], none["oldest_id"]), (None, 0, 1), "info of no channel")
        watch = await SSEClient(c, "pres", since="0").start()
        sa = [await SSEClient(a, "pres", since="0", client=f"sa{i}",
                              extra_query=[("presence", "1")]).start() for i in range(2)]
        ws = await WSClient(c, "pres").start()
        poll = await PollClient(b, "pres", since="0", client="pb").start()
        want = {"poll": 1, "longpoll": 0, "sse": 3, "ws": 1}
        await wait_counts((a, b, c), "pres", want, 15, "counts of three nodes")
        joins = [("join", {"client": f"sa{i}", "transport": "sse"}) for i in range(2)]
        await watch.wait_for(lambda: len(presence_events(watch)) >= 2, 10, "joins on node C")
        expect_eq(sorted(presence_events(watch), key=lambda e: e[1]["client"]), joins,
                  "node A's joins seen on node C")
        sa[1].abort()
        leave = ("leave", {"client": "sa1", "transport": "sse"})
        await watch.wait_for(lambda: len(presence_events(watch)) >= 3, 10, "a leave on node C")
        expect_eq(presence_events(watch)[2], leave, "node A's leave seen on node C")
        problem = ids_problem(watch.ids(), [1, 2, 3])
        check(problem is None, f"node C's stream: {problem}")
        want = {"poll": 1, "longpoll": 0, "sse": 2, "ws": 1}
        await wait_counts((a, b, c), "pres", want, 15, "counts once sa1 left")
        t0 = time.monotonic()
        a.signal(signal.SIGKILL)
        expect_eq(a.wait_exit(5), -signal.SIGKILL, "node A killed")
        sa[0].abort()
        want = {"poll": 1, "longpoll": 0, "sse": 1, "ws": 1}
        await wait_counts((b, c), "pres", want, NODE_TTL + 15, "counts once node A is gone")
        diag(f"node A's counts gone {time.monotonic() - t0:.1f} s after its kill (TTL {NODE_TTL} s)")
        ws.abort()
        poll.abort()
        await wait_counts((b, c), "pres", {"poll": 1, "longpoll": 0, "sse": 1, "ws": 0}, 10,
                          "a WebSocket gone on node C")
        watch.abort()


def apikey_files():
    d = tempfile.mkdtemp(prefix="anypush-t-redis-key-")
    k = os.path.join(d, "key")
    with open(k, "w") as f:
        f.write("k" * 40 + "\n")
    return k, {"Authorization": "apikey " + "k" * 40}


async def test_admin_across_nodes():
    "admin API with --redis: a delete ends subscribers on every node and empties Redis (new epoch: a gap on resume); a disconnect reaches every node"
    key, hdr = apikey_files()
    with RedisServer() as r, Gateway("--redis", r.url(), "--api-key-file", key) as a, \
            Gateway("--redis", r.url(), "--api-key-file", key) as b:
        def post(gw, ch, i):
            st, _, body = request(gw, "POST", f"/channels/{ch}", body=json.dumps({"n": i}).encode(),
                                  headers=dict(hdr, **{"Content-Type": "application/json"}))
            expect_eq(st, 201, f"publish {i}: {body!r}")
            return json.loads(body)
        old = [post(a, "adm", i)["epoch"] for i in range(1, 6)][0]
        sa = await SSEClient(a, "adm", since="0", headers=hdr).start()
        sb = await SSEClient(b, "adm", since="0", headers=hdr).start()
        for s in (sa, sb):
            await s.wait_count(5, 10)
        st, _, body = request(b, "DELETE", "/admin/channels/adm", headers=hdr)
        expect_eq((st, json.loads(body)), (200, {"deleted": "adm"}), "delete on node B")
        for name, s in (("A", sa), ("B", sb)):
            await s.wait_done(10)
            check(any(ev == "error" and "closed_by_admin" in d for ev, _, d in s.raw_events),
                  f"node {name}'s SSE stream's last events: {s.raw_events[-2:]!r}")
            # the closing error event is no message
            problem = ids_problem([m["id"] for m in s.messages if m.get("event") != "error"],
                                  list(range(1, 6)))
            check(problem is None, f"node {name} before the delete: {problem}")
        cursor = sb.cursor
        for gw in (a, b):
            got = info(gw, "adm", headers=hdr)
            check(got["epoch"] != old and got["last_id"] == 0 and got["retained"] == 0,
                  f"info after the delete: {got}")
        back = await SSEClient(a, "adm", since=cursor, headers=hdr).start()
        new = [post(b, "adm", i)["epoch"] for i in range(1, 4)][0]
        check(new != old, "the deleted channel kept its epoch")
        await back.wait_count(3, 10)
        await asyncio.sleep(0.2)
        expect_eq(len(back.gaps), 1, f"a resume across the delete: {back.describe()}")
        expect_eq([(m["id"], m["epoch"]) for m in back.messages], [(1, new), (2, new), (3, new)],
                  "ids after the delete")
        back.abort()
        expect_error(request(a, "DELETE", "/admin/channels/nope", headers=hdr), 404, "no_channel",
                     "delete a channel no node has")
        za = await WSClient(a, "z1", client="zed", headers=hdr).start()
        zb = await SSEClient(b, "z2", client="zed", headers=hdr).start()
        keep = await SSEClient(b, "z2", client="other", headers=hdr).start()
        st, _, body = request(a, "DELETE", "/admin/clients/zed", headers=hdr)
        expect_eq((st, json.loads(body)), (200, {"disconnected": 1, "nodes": 2}), "disconnect zed from node A")
        await za.wait_done(10)
        expect_eq(za.close_code, 4002, "zed's WebSocket on node A")
        await zb.wait_done(10)
        check(any(ev == "error" and "closed_by_admin" in d for ev, _, d in zb.raw_events),
              f"zed's SSE on node B: {zb.raw_events[-2:]!r}")
        check(keep.end_reason is None, f"another client was ended: {keep.describe()}")
        keep.abort()


def publish_loop(gw, stop, out):
    """Publish over one keep-alive connection until it closes or stop is
    set; out gets (monotonic time, status, body)."""
    pub = Publisher(gw, timeout=5)
    deadline = time.monotonic() + 20
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                st, body = pub.publish("loop", {"n": len(out)})
            except Exception as e:  # noqa: BLE001 - the close, whatever http.client calls it
                out.append((time.monotonic(), None, repr(e)))
                return
            out.append((time.monotonic(), st, body))
            time.sleep(0.005)
    finally:
        pub.close()


async def test_drain_refuses_publishes():
    "SIGTERM on a --redis node held by a stalled reader: publishes in the drain get 503 shutting_down, none reaches Redis"
    with RedisServer() as r, node(r) as b:
        a = Gateway("--redis", r.url(), "--outq-limit", str(64 << 20), "--max-message", "16384")
        stop, out, loop = threading.Event(), [], None
        try:
            sse = await SSEClient(a, "stall", rcvbuf=4096).start()
            sse.pause()

            def stalled():
                m, last = metrics(a), info(a, "stall")["last_id"]
                return m.get('anypush_delivered_total{transport="sse"}', 0) < last - 40
            await publish_until(a, "stall", stalled)
            # behind is not yet stalled: a stream that catches up ends at
            # SIGTERM without holding the drain open for the publisher
            last, same_since = None, time.monotonic()
            deadline = time.monotonic() + 15
            while time.monotonic() - same_since < 0.5:
                check(time.monotonic() < deadline, "the stalled reader kept receiving for 15 s")
                now = metrics(a).get('anypush_delivered_total{transport="sse"}', 0)
                if now != last:
                    last, same_since = now, time.monotonic()
                await asyncio.sleep(0.1)
            loop = threading.Thread(target=publish_loop, args=(a, stop, out))
            loop.start()
            await wait_until(lambda: len(out) >= 5, 10, 0.01, "the publisher looping")
            a.signal(signal.SIGTERM)
            t0 = time.monotonic()
            rc = await asyncio.to_thread(a.wait_exit, DRAIN + 15)
            held = time.monotonic() - t0
            stop.set()
            await asyncio.to_thread(loop.join, 10)
            expect_eq(rc, 0, "exit status after SIGTERM")
            # how long the stalled reader held the drain open varies with
            # the kernel's buffers; any time in it is enough here
            diag(f"exit {held:.2f} s after SIGTERM")
            statuses = [s for _, s, _ in out if s is not None]
            diag(f"publisher: {statuses.count(201)} x 201, {statuses.count(503)} x 503, then {out[-1][2]!s:.60}")
            check(503 in statuses, f"no 503 during the drain: {statuses[-10:]}")
            first = statuses.index(503)
            check(all(s == 201 for s in statuses[:first]) and all(s == 503 for s in statuses[first:]),
                  f"statuses around SIGTERM: {statuses[max(0, first - 3):first + 5]}")
            bad = [b for _, s, b in out if s == 503 and b.get("error", {}).get("code") != "shutting_down"]
            check(not bad, f"503 answers that are not shutting_down: {bad[:2]}")
            got = info(b, "loop")
            expect_eq(got["last_id"], statuses.count(201), "publishes Redis stored: the 201s, no more")
        finally:
            stop.set()
            if loop is not None:
                loop.join(10)
            a.stop(check=False, timeout=1)


async def test_new_channels_per_ip_with_redis():
    "--new-channels-per-ip with --redis: publishes (to Redis, no channel on the node) are not limited, subscribes to channels new to the node are"
    with RedisServer() as r, Gateway("--redis", r.url(), "--new-channels-per-ip", "2") as gw:
        for i in range(10):
            st, body = publish(gw, f"rn{i}", {"n": i})
            expect_eq(st, 201, f"a publish to new channel {i} through Redis: {body!r}")
        m = MuxClient(gw)
        await m.start()
        got = [await m.op({"op": "subscribe", "channel": f"rs{i}"}) for i in range(10)]
        refused = [f for f in got if f.get("type") == "error"]
        check(refused and len(got) - len(refused) >= 2, f"subscribes to new channels: {got}")
        check(all(f.get("code") == "channel_rate_limited" for f in refused), f"the error frames: {refused}")
        st, _, body = get(gw, "/metrics")
        line = [x for x in body.decode().splitlines() if x.startswith("anypush_channel_rate_limited_total ")]
        expect_eq(line, [f"anypush_channel_rate_limited_total {len(refused)}"], "refusals counted exactly")
        await m.close()


async def test_resume_older_than_the_ring():
    "a cursor older than a node's ring (node A keeps 5) gets the ids between from Redis, then the ring: each once, in order, no gap, every transport"
    with RedisServer() as r, node(r) as b, Gateway("--redis", r.url(), "--history-size", "5") as a:
        keep = await SSEClient(a, "old").start()  # keeps the channel in use on A
        epoch = publish_n(b, "old", 1, 20)
        await keep.wait_count(20, 15)
        # A's ring holds 16..20 (--history-size 5); info answers from
        # Redis, which holds them all
        expect_eq((info(a, "old")["oldest_id"], info(a, "old")["last_id"]), (1, 20), "what Redis holds")
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


async def test_welcomes_wait_for_the_sync():
    "on a node that has not read the channel, SSE (both paths), WebSocket welcomes and a /ws subscribe ack carry Redis' epoch and last id; resuming from them loses and repeats nothing; with Redis down they end redis_unavailable"
    kinds = {
        "sse": lambda gw, ch, since=None: SSEClient(gw, ch, since=since),
        "sse-mhd": lambda gw, ch, since=None: SSEClient(gw, ch, since=since,
                                                        extra_query=[("transport", "sse")]),
        "ws": lambda gw, ch, since=None: WSClient(gw, ch, since=since),
    }
    with RedisServer() as r, node(r) as a, node(r) as b:
        for k, make in kinds.items():
            ch = f"wel-{k}"
            epoch = publish_n(b, ch, 1, 3)
            c = await make(a, ch).start(timeout=15)
            cursor = str(c.welcome.get("cursor"))
            c.abort()
            expect_eq(cursor, f"{epoch}:3", f"{k}: the welcome's cursor on A: {c.describe()}")
            publish_n(b, ch, 4, 6)
            c = await make(a, ch, since=cursor).start(timeout=15)
            await c.wait_count(3, 15)
            await asyncio.sleep(0.2)  # anything extra would show
            c.abort()
            problem = ids_problem(c.ids(), [4, 5, 6])
            check(problem is None, f"{k} resumed from its welcome: {problem}")
        epoch = publish_n(b, "wel-mux", 1, 3)
        m = await MuxClient(a).start()
        ack = await m.subscribe("wel-mux")
        expect_eq(ack.get("cursor"), f"{epoch}:3", f"the /ws subscribe ack on A: {ack!r}")
        m.abort()
        publish_n(b, "wel-mux", 4, 6)
        m = await MuxClient(a).start()
        await m.subscribe("wel-mux", since=ack["cursor"])
        await m.wait_count(3, 15)
        await asyncio.sleep(0.2)
        m.abort()
        problem = ids_problem(m.ids(), [4, 5, 6])
        check(problem is None, f"/ws resumed from its ack: {problem}")
        # Redis down: nothing can sync a channel new to A
        r.kill()
        s = SSEClient(a, "wel-down")
        sm = SSEClient(a, "wel-down", extra_query=[("transport", "sse")])
        w = WSClient(a, "wel-down")
        m = await MuxClient(a).start()
        for c in (s, sm):
            asyncio.ensure_future(_quiet_start(c))
        await w.start(wait_welcome=False)
        f = await m.op({"op": "subscribe", "channel": "wel-down"}, timeout=15)
        expect_eq((f.get("type"), f.get("code")), ("error", "redis_unavailable"), f"/ws subscribe with Redis down: {f!r}")
        await w.wait_closed(15)
        expect_eq((w.close_code, w.welcome), (1013, None), f"ws with Redis down: {w.describe()}")
        for name, c in (("sse", s), ("sse-mhd", sm)):
            await wait_until(lambda c=c: c.ended_at is not None, 15, what=f"{name} ends")
            errs = [json.loads(d) for (e, _, d) in c.raw_events if e == "error"]
            expect_eq([x.get("code") for x in errs], ["redis_unavailable"], f"{name} with Redis down: {c.describe()}")
            expect_eq(c.welcome, None, f"{name}: no welcome")
        m.abort()


if __name__ == "__main__":
    run([test_four_transports_across_nodes, test_hop_between_nodes_with_cursor,
         test_ws_publish_acks_from_redis, test_node_killed_mid_stream,
         test_redis_down_then_back_empty, test_redis_back_with_older_data,
         test_info_summed_over_nodes, test_admin_across_nodes,
         test_drain_refuses_publishes, test_new_channels_per_ip_with_redis,
         test_resume_older_than_the_ring, test_cursor_past_redis_head_is_a_gap,
         test_first_poll_waits_for_the_sync, test_welcomes_wait_for_the_sync], budget=420, timeout=60)
