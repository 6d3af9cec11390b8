#!/usr/bin/env python3
"""A WebSocket session with a backlog writes many frames in one send
(lws_ws.c write_pulled: each frame's header and body copied into the
loop's 16 KiB buffer, docs/internals/transports.md). Every kind of frame
goes through it: messages, gap frames, cursor frames, the heartbeat, and
in binary-frames mode an envelope with its raw bytes; a message larger
than what is left waits for the next write, and one larger than the
whole buffer goes out alone. Whatever the mix, the client must read
every frame whole, once, in order."""

import asyncio

from gwlib import (Gateway, MuxClient, Publisher, WSClient, expect_eq, ids_problem, payload,
                   publish, run)

SIZES = [50, 300, 9_000, 17_000, 40_000, 120]  # across the 16 KiB buffer


async def test_backlog_in_order():
    "ws: a paused reader's backlog of small, medium and 40 KB messages and excluded ones arrives whole, once, in order"
    # the backlog (about 4.5 MB) stays under --outq-limit: a reader that
    # far behind is cut as slow, which is not what this checks
    with Gateway("--outq-limit", str(16 << 20)) as gw:
        ch = "batch:mix"
        w = WSClient(gw, ch, client="reader")
        await w.start()
        w.pause()
        pub = Publisher(gw)
        want = []
        for i in range(400):
            size = SIZES[i % len(SIZES)]
            # every 7th is the reader's own, excluded from it: a cursor
            # frame moves its cursor in the middle of the batch
            mine = i % 7 == 3
            st, body = pub.publish(ch, payload(i, size=size), client="reader" if mine else None,
                                   exclude_sender=mine)
            expect_eq(st, 201, f"publish {i}")
            if not mine:
                want.append((body["id"], payload(i, size=size)))
        pub.close()
        await asyncio.sleep(0.3)
        w.resume()
        await w.wait_count(len(want), 20)
        expect_eq(ids_problem(w.ids(), [i for i, _ in want]), None, "ids")
        got = [(m["id"], m["data"]) for m in w.messages]
        expect_eq(got == want, True, f"every message's data, in order ({w.describe()})")
        # the cursor frames moved it past the last message, its own
        await asyncio.sleep(0.2)
        expect_eq(w.cursor.split(":")[-1], "400", "cursor after the backlog")
        expect_eq((w.problems, w.binaries, w.others), ([], [], []), "frames the client did not expect")
        w.abort()


async def test_gap_then_retained():
    "ws: a resume behind --history-size gets its gap frame and every retained message in the same writes, in order"
    with Gateway("--history-size", "300") as gw:
        ch = "batch:gap"
        for i in range(500):
            publish(gw, ch, payload(i, size=200))
        w = WSClient(gw, ch, since=1)
        await w.start()
        await w.wait_count(300, 20)
        expect_eq(len(w.gaps), 1, f"one gap ({w.describe()})")
        expect_eq(ids_problem(w.ids(), list(range(201, 501))), None, "the retained ids")
        expect_eq(w.problems, [], "problems")
        w.abort()


async def test_binary_frames_backlog():
    "/ws binary frames: in a backlog each binary message's envelope is followed by its own bytes, also past 16 KiB"
    with Gateway() as gw:
        ch = "batch:bin"
        f = MuxClient(gw, client="bin")
        await f.start()
        await f.hello_binary_frames()
        await f.subscribe(ch)
        f.pause()
        blobs = [bytes([i % 256]) * n for i, n in enumerate([10, 5_000, 20_000, 1, 15_000] * 8)]
        want = []
        for i, b in enumerate(blobs):
            publish(gw, ch, b)                  # octet-stream: binary
            want.append(("frame", b))
            publish(gw, ch, {"text": i})        # a text message between them
            want.append((None, {"text": i}))
        await asyncio.sleep(0.3)
        f.resume()
        await f.wait_count(len(want), 20)
        got = [("frame", m.get("raw")) if m.get("binary") == "frame" else (None, m.get("data"))
               for m in f.messages]
        expect_eq(got == want, True, f"envelopes paired with their bytes, in order ({f.describe()})")
        expect_eq((f.binaries, f.problems), ([], []), "binary frames without an envelope, problems")
        await f.close()


if __name__ == "__main__":
    run([test_backlog_in_order, test_gap_then_retained, test_binary_frames_backlog])
