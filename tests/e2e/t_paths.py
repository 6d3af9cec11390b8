#!/usr/bin/env python3
"""Whole request paths with generated inputs, against the real binary (run
it on the ASan build too).

Every transport (poll, longpoll, sse, ws, /ws) subscribes to lists of 1,
2, 7, 31 and 32 channels whose names are 1, 2, 199 and 200 characters
long, with cursors 0, 1 and 18446744073709551615, plain, with the current
epoch and with a stale one: every welcome, reply, event and frame must be
well formed, free of control bytes, and carry the cursors the protocol
promises (docs/protocol.md). Then churn: 5,000 short polls, then more than
4,096 long polls held at once, so the subscriber-id table grows past 2,048
and 4,096, while SSE and long-poll clients vanish abruptly (the watcher's
kill path walks that table); the gateway must stay up and its /metrics
must come back to zero subscribers.

The clients here are small and raw on purpose: they check bytes, not
just parsed values.
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import struct
import time

from gwlib import Gateway, Publisher, check, expect_eq, get, metrics, run

MAXU = 18446744073709551615
LENGTHS = (1, 2, 199, 200)
LIST_SIZES = (1, 2, 7, 31, 32)
SHORT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
LONG = SHORT + "_.:~-"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EPOCH_RE = re.compile(r"^[0-9a-z]{1,13}$")
# (form, id): form "plain", "epoch" (the channel's) or "stale" (another)
VARIANTS = [(f, i) for f in ("plain", "epoch", "stale") for i in (0, 1, MAXU)]


# ---------------------------------------------------------------------------
# raw clients

def control_bytes(data, newline_ok=False):
    """None if data is UTF-8 without control characters ('\\n' allowed
    where newline_ok), else what is wrong."""
    for i, b in enumerate(data):
        if b < 0x20 and not (newline_ok and b == 0x0A):
            return f"control byte 0x{b:02x} at {i}: {data[max(0, i - 40):i + 40]!r}"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8: {e}"
    return None


async def connect(port):
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


async def send_get(writer, port, path, extra=""):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode("latin-1"))
    await asyncio.wait_for(writer.drain(), 5)


async def read_head(reader, timeout=5):
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


class Chunks:
    """The body of a chunked response, as it arrives."""

    def __init__(self, reader):
        self.r = reader
        self.done = False

    async def read(self, timeout):
        if self.done:
            return b""
        line = await asyncio.wait_for(self.r.readuntil(b"\r\n"), timeout)
        size = int(line.split(b";")[0], 16)
        if size == 0:
            self.done = True
            return b""
        data = await asyncio.wait_for(self.r.readexactly(size + 2), timeout)
        return data[:-2]


async def http_get(port, path, timeout=10):
    """One GET on its own connection: (status, body bytes)."""
    reader, writer = await connect(port)
    try:
        await send_get(writer, port, path, "Connection: close\r\n")
        status, headers = await read_head(reader, timeout)
        if "chunked" in headers.get("transfer-encoding", ""):
            body, ch = b"", Chunks(reader)
            while not ch.done:
                body += await ch.read(timeout)
        elif "content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
        else:
            body = await asyncio.wait_for(reader.read(), timeout)
        return status, body
    finally:
        writer.transport.abort()


class WS:
    """A WebSocket client that keeps every text frame's bytes."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.frames = []

    @classmethod
    async def open(cls, port, path):
        reader, writer = await connect(port)
        key = base64.b64encode(os.urandom(16)).decode()
        await send_get(writer, port, path,
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: anypush.v1\r\n")
        status, headers = await read_head(reader)
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if status != 101 or headers.get("sec-websocket-accept") != want:
            writer.transport.abort()
            raise AssertionError(f"GET {path[:120]}...: handshake status {status} {headers}")
        return cls(reader, writer)

    async def frame(self, timeout):
        """The next text frame's bytes (pings are answered, others kept)."""
        while True:
            b0, b1 = await asyncio.wait_for(self.r.readexactly(2), timeout)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.r.readexactly(8))[0]
            check(not b1 & 0x80, "a masked server frame")
            data = await asyncio.wait_for(self.r.readexactly(n), timeout)
            op = b0 & 0x0F
            if op == 0x1:
                check(b0 & 0x80, "a fragmented text frame")
                self.frames.append(data)
                return data
            if op == 0x8:
                raise AssertionError(f"closed by the server: {data!r}")

    async def send_text(self, text):
        data, mask = text.encode(), os.urandom(4)
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.w.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        await asyncio.wait_for(self.w.drain(), 5)

    def abort(self):
        self.w.transport.abort()


# ---------------------------------------------------------------------------
# the channels and what each cursor must give

def make_list(size, seed):
    """size distinct names, lengths cycling 1, 2, 199, 200."""
    names = []
    for j in range(size):
        length = LENGTHS[(j + seed) % 4]
        if length <= 2:
            name = "".join(SHORT[(seed * 11 + j * 3 + k) % len(SHORT)] for k in range(length))
        else:
            tag = f"p{seed}n{j}-"
            name = tag + "".join(LONG[(j * 7 + k) % len(LONG)] for k in range(length - len(tag)))
        names.append(name)
    check(len(set(names)) == size, f"test bug: duplicate names in {names}")
    return names


class World:
    """The channels, each with its epoch and last id once published to."""

    def __init__(self):
        self.lists = {n: make_list(n, n) for n in LIST_SIZES}
        self.state = {}   # name -> (epoch, last id)

    def publish_all(self, gw):
        pub = Publisher(gw)
        try:
            names = sorted({c for names in self.lists.values() for c in names})
            for i, name in enumerate(names):
                for k in range(1 + i % 2):
                    st, body = pub.publish(name, {"n": k, "s": "héllo ☃", "name": name[:20]})
                    check(st == 201, f"publish to {name}: {st} {body!r}")
                    check(EPOCH_RE.match(str(body.get("epoch", ""))), f"publish reply epoch: {body!r}")
                    self.state[name] = (body["epoch"], body["id"])
        finally:
            pub.close()

    def stale(self, name):
        """Another epoch: the largest there is, 13 characters (the
        gateway makes 8), so that cursors are as long as they get."""
        check(self.state[name][0] != "3w5e11264sgsf", "test bug: the largest epoch is in use")
        return "3w5e11264sgsf"

    def cursor(self, name, variant):
        """The cursor text a client sends for this variant, or None."""
        if variant is None:
            return None
        form, i = variant
        if form == "plain":
            return str(i)
        epoch = self.state[name][0] if form == "epoch" else self.stale(name)
        return f"{epoch}:{i}"

    def start(self, name, variant):
        """The cursor the welcome or ack must echo."""
        epoch, last = self.state[name]
        if variant is None:
            return f"{epoch}:{last}"
        if variant[0] == "plain":
            return f"{epoch}:{variant[1]}"
        return self.cursor(name, variant)

    def expected(self, name, variant):
        """(gap or None, ids of the messages) this channel must deliver."""
        epoch, last = self.state[name]
        if variant is None:
            return None, []
        form, i = variant
        if form == "stale" or i > last:
            return {"channel": name, "last_seen": i, "cursor": 0, "epoch": epoch}, list(range(1, last + 1))
        return None, list(range(i + 1, last + 1))

    def final(self, name):
        epoch, last = self.state[name]
        return f"{epoch}:{last}"


def cases():
    """(size, mix) for every list: each variant on every channel (so the
    cursors are as long as they get: 32 times stale:max), two mixes of
    all of them, and no cursor at all."""
    out = []
    for n in LIST_SIZES:
        out += [(n, ("all", v)) for v in range(len(VARIANTS))]
        out += [(n, ("mix", m)) for m in ((0, 4) if n > 1 else ())]
        out += [(n, None)]
    return out


def variants_of(names, mix):
    if mix is None:
        return [None] * len(names)
    how, m = mix
    if how == "all":
        return [VARIANTS[m]] * len(names)
    return [VARIANTS[(j + m) % len(VARIANTS)] for j in range(len(names))]


def query_since(world, names, vs):
    if vs[0] is None:
        return ""
    return "&since=" + ",".join(world.cursor(c, v) for c, v in zip(names, vs))


def check_message(obj, name, world, what):
    epoch, _ = world.state[name]
    check(obj.get("type") == "message" and obj.get("channel") == name,
          f"{what}: not a message of its channel: {str(obj)[:300]}")
    check(obj.get("epoch") == epoch and isinstance(obj.get("id"), int),
          f"{what}: message epoch/id {obj.get('epoch')!r}/{obj.get('id')!r}, channel epoch {epoch}")


def check_stream(world, names, vs, gaps, msgs, what):
    """gaps: gap objects in order; msgs: (channel, id) in order."""
    want_gaps = [g for g in (world.expected(c, v)[0] for c, v in zip(names, vs)) if g]
    expect_eq(gaps, want_gaps, f"{what}: gaps")
    for c, v in zip(names, vs):
        got = [i for ch, i in msgs if ch == c]
        expect_eq(got, world.expected(c, v)[1], f"{what}: ids of {c[:30]}")


# ---------------------------------------------------------------------------
# each transport

async def poll_case(gw, world, kind, names, vs):
    q = f"?transport={kind}" + query_since(world, names, vs) + ("&timeout=1" if kind == "longpoll" else "")
    path = "/channels/" + ",".join(names) + q
    what = f"{kind} {len(names)} channels {vs[:3]}"
    status, body = await http_get(gw.port, path)
    check(status == 200, f"{what}: status {status}: {body[:300]!r}")
    bad = control_bytes(body)
    check(bad is None, f"{what}: {bad}")
    doc = json.loads(body)
    next_ = ",".join(world.final(c) for c in names)
    expect_eq(doc.get("next"), next_, f"{what}: next")
    msgs = []
    for m in doc["messages"]:
        check_message(m, m.get("channel"), world, what)
        msgs.append((m["channel"], m["id"]))
    check("more" not in doc, f"{what}: more")
    check_stream(world, names, vs, doc.get("gaps", []), msgs, what)
    check(doc.get("gap", False) == bool(doc.get("gaps")), f"{what}: gap flag {doc.get('gap')!r}")


def sse_blocks(text):
    blocks = text.split("\n\n")
    return blocks[:-1], blocks[-1]


def sse_fields(block, what):
    fields = {}
    for line in block.split("\n"):
        k, sep, v = line.partition(": ")
        check(sep and k in ("id", "event", "data", "retry") and k not in fields,
              f"{what}: SSE line {line[:200]!r}")
        fields[k] = v
    return fields


async def sse_case(gw, world, names, vs):
    q = "?transport=sse" + query_since(world, names, vs)
    what = f"sse {len(names)} channels {vs[:3]}"
    want = sum((1 if world.expected(c, v)[0] else 0) + len(world.expected(c, v)[1])
               for c, v in zip(names, vs))
    reader, writer = await connect(gw.port)
    try:
        await send_get(writer, gw.port, "/channels/" + ",".join(names) + q)
        status, headers = await read_head(reader)
        check(status == 200, f"{what}: status {status}")
        chunks, raw, events = Chunks(reader), b"", []
        while len(events) < want + 2:   # retry, welcome, then the stream
            raw += await chunks.read(5)
            bad = control_bytes(raw, newline_ok=True)
            check(bad is None, f"{what}: {bad}")
            events, _ = sse_blocks(raw.decode())
    finally:
        writer.transport.abort()
    expect_eq(events[0], "retry: 2000", f"{what}: first block")
    start = ",".join(world.start(c, v) for c, v in zip(names, vs))
    welcome = sse_fields(events[1], what)
    expect_eq(welcome.get("event"), "welcome", f"{what}: welcome event")
    expect_eq(welcome.get("id"), start, f"{what}: welcome id")
    expect_eq(json.loads(welcome["data"]).get("cursor"), start, f"{what}: welcome cursor")
    gaps, msgs, last_id = [], [], None
    for block in events[2:want + 2]:
        f = sse_fields(block, what)
        data = json.loads(f["data"])
        if f.get("event") == "gap":
            gaps.append(data)
        else:
            check_message(data, data.get("channel"), world, what)
            expect_eq(f.get("event"), "message", f"{what}: event")
            msgs.append((data["channel"], data["id"]))
        last_id = f.get("id")
    check_stream(world, names, vs, gaps, msgs, what)
    if want:
        expect_eq(last_id, ",".join(world.final(c) for c in names), f"{what}: the last id")


async def ws_case(gw, world, names, vs):
    q = "?transport=ws" + query_since(world, names, vs)
    what = f"ws {len(names)} channels {vs[:3]}"
    want = sum((1 if world.expected(c, v)[0] else 0) + len(world.expected(c, v)[1])
               for c, v in zip(names, vs))
    ws = await WS.open(gw.port, "/channels/" + ",".join(names) + q)
    try:
        frames = [await ws.frame(5) for _ in range(want + 1)]
    finally:
        ws.abort()
    for f in frames:
        bad = control_bytes(f)
        check(bad is None, f"{what}: {bad}")
    welcome = json.loads(frames[0])
    expect_eq(welcome.get("type"), "welcome", f"{what}: first frame")
    expect_eq(welcome.get("cursor"), ",".join(world.start(c, v) for c, v in zip(names, vs)),
              f"{what}: welcome cursor")
    gaps, msgs = [], []
    for f in frames[1:]:
        obj = json.loads(f)
        if obj.get("type") == "gap":
            gaps.append({k: v for k, v in obj.items() if k != "type"})
        else:
            check_message(obj, obj.get("channel"), world, what)
            msgs.append((obj["channel"], obj["id"]))
    check_stream(world, names, vs, gaps, msgs, what)


async def mux_case(gw, world, names, vs):
    what = f"/ws {len(names)} channels {vs[:3]}"
    want = sum((1 if world.expected(c, v)[0] else 0) + len(world.expected(c, v)[1])
               for c, v in zip(names, vs))
    ws = await WS.open(gw.port, "/ws")
    try:
        welcome = json.loads(await ws.frame(5))
        check(welcome.get("type") == "welcome" and "cursor" not in welcome, f"{what}: welcome {welcome}")
        for j, (c, v) in enumerate(zip(names, vs)):
            op = {"op": "subscribe", "channel": c, "ref": j + 1}
            if v is not None:
                op["since"] = world.cursor(c, v)
            await ws.send_text(json.dumps(op))
        acks, gaps, msgs = {}, [], []
        while len(acks) < len(names) or len(gaps) + len(msgs) < want:
            f = await ws.frame(5)
            bad = control_bytes(f)
            check(bad is None, f"{what}: {bad}")
            obj = json.loads(f)
            t = obj.get("type")
            if t == "ack":
                acks[obj["ref"]] = obj
            elif t == "gap":
                gaps.append({k: v for k, v in obj.items() if k != "type"})
            elif t == "message":
                check_message(obj, obj.get("channel"), world, what)
                msgs.append((obj["channel"], obj["id"]))
            else:
                raise AssertionError(f"{what}: frame {f[:300]!r}")
    finally:
        ws.abort()
    for j, (c, v) in enumerate(zip(names, vs)):
        expect_eq(acks[j + 1].get("cursor"), world.start(c, v), f"{what}: ack cursor of {c[:30]}")
    # subscribes are one at a time: gaps come in subscription order
    check_stream(world, names, vs, gaps, msgs, what)


async def test_paths():
    "every transport, 1 to 32 channels of names 1 to 200 long, cursors 0/1/max plain, epoch, stale"
    with Gateway() as gw:
        world = World()
        world.publish_all(gw)
        sem = asyncio.Semaphore(16)
        errors = []

        async def one(kind, n, mix):
            names = world.lists[n]
            vs = variants_of(names, mix)
            async with sem:
                try:
                    if kind in ("poll", "longpoll"):
                        await poll_case(gw, world, kind, names, vs)
                    elif kind == "sse":
                        await sse_case(gw, world, names, vs)
                    elif kind == "ws":
                        await ws_case(gw, world, names, vs)
                    else:
                        await mux_case(gw, world, names, vs)
                except Exception as e:  # noqa: BLE001 - report them all
                    errors.append(f"{kind} n={n} mix={mix}: {type(e).__name__}: {e}")

        jobs = [one(k, n, m) for k in ("poll", "longpoll", "sse", "ws", "/ws") for n, m in cases()]
        await asyncio.gather(*jobs)
        check(not errors, f"{len(errors)} of {len(jobs)} paths failed:\n" + "\n".join(errors[:8]))
        check(gw.alive(), "the gateway died")


# ---------------------------------------------------------------------------
# churn past the id table's growth points

SHORT_POLLS = 5000
HELD = 4300          # > 4,096 attached at once: the table grows twice
VANISHING_SSE = 120
CONCURRENCY = 200


def gauge(mets, name, transport):
    return mets.get(f'anypush_{name}{{transport="{transport}"}}', 0)


async def test_churn():
    "5,000 short polls, then 4,300 long polls held at once while SSE and long polls vanish; still up, metrics back to 0"
    with Gateway() as gw:
        port = gw.port
        sem = asyncio.Semaphore(CONCURRENCY)
        bad = []

        async def short_poll(i):
            async with sem:
                st, body = await http_get(port, f"/channels/churn{i % 50}?transport=poll&since=0")
                if st != 200 or control_bytes(body) or "next" not in json.loads(body):
                    bad.append(f"poll {i}: {st} {body[:200]!r}")

        t0 = time.monotonic()
        await asyncio.gather(*(short_poll(i) for i in range(SHORT_POLLS)))
        check(not bad, f"{len(bad)} short polls failed: {bad[:3]}")
        t_short = time.monotonic() - t0

        held = []

        async def hold(i):
            async with sem:
                reader, writer = await connect(port)
                held.append((reader, writer))
                await send_get(writer, port, f"/channels/hold{i % 8}?transport=longpoll&timeout=60")

        await asyncio.gather(*(hold(i) for i in range(HELD)))

        async def attached(n):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                m = metrics(gw)
                if gauge(m, "subscribers", "longpoll") >= n:
                    return m
                await asyncio.sleep(0.2)
            raise AssertionError(f"long polls attached: {gauge(metrics(gw), 'subscribers', 'longpoll')}, want {n}")

        await attached(HELD)
        # SSE clients that vanish while parked: the watcher kills their ids
        sses = []
        for i in range(VANISHING_SSE):
            reader, writer = await connect(port)
            await send_get(writer, port, f"/channels/hold{i % 8},sse{i}?transport=sse")
            sses.append((reader, writer))
        for reader, _ in sses:
            st, _ = await read_head(reader)
            check(st == 200, f"sse status {st}")
        for _, writer in sses:
            writer.transport.abort()
        # half the long polls vanish too; the rest get a message
        for _, writer in held[::2]:
            writer.transport.abort()
        pub = Publisher(gw)
        try:
            for k in range(8):
                st, body = pub.publish(f"hold{k}", {"k": k})
                check(st == 201, f"publish hold{k}: {st} {body!r}")
        finally:
            pub.close()

        async def reply(reader, writer):
            try:
                st, headers = await read_head(reader, 15)
                body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 15)
                doc = json.loads(body)
                if st != 200 or control_bytes(body) or len(doc["messages"]) != 1:
                    bad.append(f"long poll: {st} {body[:200]!r}")
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, KeyError) as e:
                bad.append(f"long poll: {type(e).__name__} {e}")
            finally:
                writer.transport.abort()

        await asyncio.gather(*(reply(r, w) for r, w in held[1::2]))
        check(not bad, f"{len(bad)} long polls failed: {bad[:3]}")
        check(gw.alive(), "the gateway died")
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz after the churn")
        st, body = await http_get(port, "/channels/hold0?transport=poll&since=0")
        check(st == 200 and len(json.loads(body)["messages"]) == 1, f"a poll after the churn: {st} {body[:200]!r}")
        deadline = time.monotonic() + 10
        while True:
            m = metrics(gw)
            left = {t: gauge(m, "subscribers", t) for t in ("poll", "longpoll", "sse", "ws")}
            if not any(left.values()):
                break
            check(time.monotonic() < deadline, f"subscribers still attached 10 s after the churn: {left}")
            await asyncio.sleep(0.2)
        check(m.get("anypush_dead_peers_total", 0) >= VANISHING_SSE,
              f"dead_peers_total {m.get('anypush_dead_peers_total')}, want >= {VANISHING_SSE}")
        check(m.get("anypush_messages_alive", 0) <= m.get("anypush_retained_messages", 0),
              f"messages alive {m.get('anypush_messages_alive')} > retained {m.get('anypush_retained_messages')}")
        check(gw.alive(), "the gateway died")
        print(f"# churn: {SHORT_POLLS} short polls in {t_short:.1f} s, {HELD} long polls held at once")


if __name__ == "__main__":
    run([test_paths, test_churn], budget=50.0, timeout=35.0)
