#!/usr/bin/env python3
"""An SSE stream keeps no buffer while idle (docs/internals/transports.md):
the reader's working space comes when there is something to write and goes
when the stream parks, and libmicrohttpd's response block is small for a
chunked (HTTP/1.1) stream. None of that may cost a byte of a message: a
message larger than every buffer involved (the block, the connection's
write buffer, the reader's batch) arrives whole, over HTTP/1.1 and over
HTTP/1.0 (unchunked, read through the block), in bursts separated by idle
spells that park the stream and free its buffers in between."""

import asyncio
import json

from gwlib import Gateway, Publisher, SSEClient, check, expect_eq, open_stream, payload, run

BIG = 300_000  # above the 16 KiB pool, the 64 KiB batch and any block
ARGS = ("--max-message", "1000000")


def burst(i):
    """one big message between small ones"""
    return [payload(i * 10 + 1), payload(i * 10 + 2, size=BIG), payload(i * 10 + 3)]


async def test_big_messages_between_idle_spells_http11():
    "HTTP/1.1 (chunked): a 300 KB message between small ones, three bursts with idle spells, all whole"
    with Gateway(*ARGS) as gw:
        ch = "sse:buffers"
        sub = SSEClient(gw, ch)
        await sub.start()
        pub = Publisher(gw)
        sent = []
        for i in range(3):
            await asyncio.sleep(0.3)  # parked: the reader gave its buffers back
            for p in burst(i):
                st, _ = await pub.apublish(ch, p)
                expect_eq(st, 201, "publish")
                sent.append(p)
            await sub.wait_count(len(sent), 10)
        pub.close()
        expect_eq([m["data"] for m in sub.messages], sent, "the data of every message, in order")
        expect_eq([m["id"] for m in sub.messages], list(range(1, len(sent) + 1)), "ids")
        expect_eq(sub.problems, [], "SSE problems")
        sub.abort()


async def read_events(reader, want, timeout):
    """Parse an unchunked event stream until `want` message events came."""
    buf, got = b"", []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < want:
        left = deadline - loop.time()
        check(left > 0, f"timed out with {len(got)} of {want} messages")
        chunk = await asyncio.wait_for(reader.read(1 << 16), left)
        check(chunk, f"stream ended after {len(got)} of {want} messages")
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            fields = [l.split(b": ", 1) for l in block.split(b"\n") if not l.startswith(b":")]
            ev = {k.decode(): v for k, v in (f for f in fields if len(f) == 2)}
            if ev.get("event", b"message") in (b"welcome", b"ping") or "data" not in ev:
                continue
            got.append(json.loads(ev["data"]))
    return got


async def test_big_messages_between_idle_spells_http10():
    "HTTP/1.0 (no chunking, read through the response block): the same bursts arrive whole"
    with Gateway(*ARGS) as gw:
        ch = "sse:buffers10"
        reader, writer = await open_stream(gw.port)
        writer.write(f"GET /channels/{ch} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        check(head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], f"head {head!r}")
        check(b"chunked" not in head.lower(), f"HTTP/1.0 got a chunked body: {head!r}")
        pub = Publisher(gw)
        sent, got = [], []
        for i in range(3):
            await asyncio.sleep(0.3)
            for p in burst(i):
                st, _ = await pub.apublish(ch, p)
                expect_eq(st, 201, "publish")
                sent.append(p)
            got += await read_events(reader, 3, 10)
        pub.close()
        writer.close()
        expect_eq([m["data"] for m in got], sent, "the data of every message, in order")


if __name__ == "__main__":
    run([test_big_messages_between_idle_spells_http11, test_big_messages_between_idle_spells_http10])
