#!/usr/bin/env python3
"""Hostile clients: malformed and oversized requests, slowloris, random bytes,
WebSocket protocol violations, clients that never read, disabled transports.
None of them may hurt the other clients or the stored messages."""

import asyncio
import base64
import json
import os
import random
import struct
import time

from gwlib import (Gateway, Publisher, SSEClient, WSClient, check, epochs_problem, expect_eq,
                   expect_error, get, ids_problem, info, metric_sum, metrics, parse_status, payload, publish,
                   raw_exchange, run, todo, ws_frame)

REJECT = set(range(400, 500)) | {505}


def refused(got, how):
    """A request was refused: a 4xx (or 505) answer, or the connection closed
    without any answer.  Returns None if so, else what happened."""
    st = parse_status(got)
    if st is not None:
        return None if st in REJECT else f"answered {st}: {got[:120]!r}"
    if how in ("eof", "reset") and not got:
        return None
    return f"{how} after {len(got)} bytes {got[:120]!r}"


async def bystanders(gw, ch):
    sse = SSEClient(gw, ch)
    ws = WSClient(gw, ch)
    await sse.start()
    await ws.start()
    return sse, ws


async def bystanders_fine(gw, ch, sse, ws, n_before):
    st, body = publish(gw, ch, {"after": True})
    expect_eq(st, 201, "publish after the attack")
    want = list(range(1, n_before + 2))
    for c in (sse, ws):
        await c.wait_count(len(want), 5)
        prob = ids_problem(c.ids(), want) or epochs_problem(c.messages, body["epoch"])
        check(prob is None, f"bystander {c.kind}: {prob}")
        check(not c.done, f"bystander {c.kind} was disconnected: {c.end_reason}")
    st, _, _ = get(gw, "/healthz")
    expect_eq(st, 200, "healthz after the attack")


async def test_malformed_requests():
    "malformed request lines and heads are refused; other clients unaffected"
    with Gateway("--head-timeout", "2") as gw:
        sse, ws = await bystanders(gw, "victim")
        publish(gw, "victim", 1)
        bad = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
            b"GET /healthz FOO/1.1\r\nHost: x\r\n\r\n",
            b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",   # no key
            b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 99\r\n\r\n",
        ]
        gets = [b for b in bad if not b.startswith(b"POST")]
        results = await asyncio.gather(*(raw_exchange(gw, b, read_timeout=4) for b in gets))
        fails = []
        for b, (got, how) in zip(gets, results):
            why = refused(got, how)
            if why:
                fails.append(f"{b[:60]!r}: {why}")
        for b in bad:   # the POSTs one by one, to name any that stores a message
            if b in gets:
                continue
            got, how = await raw_exchange(gw, b, read_timeout=4)
            why = refused(got, how)
            if why:
                fails.append(f"{b[:90]!r}: {why}")
            last = info(gw, "victim")["last_id"]
            if last != 1:
                fails.append(f"{b[:90]!r} stored a message (last_id {last})")
                break
        await bystanders_fine(gw, "victim", sse, ws, info(gw, "victim")["last_id"])
        check(not fails, "not refused:\n" + "\n".join(fails))


async def test_oversized_headers():
    "request heads over 16 KiB are refused (plain and upgrade), others unaffected"
    with Gateway() as gw:
        sse, ws = await bystanders(gw, "victim")
        big = "x" * 20000
        many = "".join(f"X-Pad-{i}: {'y' * 1000}\r\n" for i in range(40))
        reqs = [
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode(),
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode(),
            f"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"X-Big: {big}\r\n\r\n".encode(),
            f"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode(),
            f"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n{many}\r\n".encode(),
        ]
        results = await asyncio.gather(*(raw_exchange(gw, r, read_timeout=4) for r in reqs))
        fails = [f"request #{i + 1}: {refused(*res)}" for i, res in enumerate(results) if refused(*res)]
        await bystanders_fine(gw, "victim", sse, ws, 0)
        check(not fails, "\n".join(fails))


async def test_slowloris():
    "slowloris (partial heads, then silence) is closed after --head-timeout 1; others keep receiving"
    with Gateway("--head-timeout", "1") as gw:
        sse, ws = await bystanders(gw, "victim")
        partial = [
            b"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\n",
            b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            b"G",
            b"",
        ] * 6
        t0 = time.monotonic()
        loris = [asyncio.create_task(raw_exchange(gw, p, read_timeout=4, stop_after_head=False)) for p in partial]
        pub = Publisher(gw)
        try:
            acks = await pub.apublish_many("victim", [payload(i) for i in range(1, 31)], interval=0.1)
        finally:
            pub.close()
        results = await asyncio.gather(*loris)
        elapsed = time.monotonic() - t0
        expect_eq(acks, list(range(1, 31)), "acks while under slowloris")
        still_open = [p[:40] for p, (got, how) in zip(partial, results) if how == "timeout"]
        check(not still_open, f"{len(still_open)} of {len(partial)} partial connections still open after "
                              f"4 s (head timeout 1 s), e.g. {still_open[:3]}")
        await bystanders_fine(gw, "victim", sse, ws, 30)
        check(elapsed < 8, f"slowloris phase took {elapsed:.1f} s")


async def test_slowloris_drip():
    "a head dripped one byte every 0.25 s is still cut at about --head-timeout 1"
    with Gateway("--head-timeout", "1") as gw:
        head = b"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 40
        chunks = []
        for byte in head:
            chunks += [bytes([byte]), 0.25]
        t0 = time.monotonic()
        task = asyncio.create_task(raw_exchange(gw, chunks[:32], read_timeout=1.0, stop_after_head=False))
        got, how = await task
        dt = time.monotonic() - t0
        check(how in ("eof", "reset") or parse_status(got) in REJECT,
              f"dripping connection not closed after {dt:.1f} s ({how}, {got[:80]!r})")
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz")


async def test_random_bytes():
    "random bytes on the port (and after a WS handshake) are refused; others unaffected"
    rnd = random.Random(6455)
    with Gateway("--head-timeout", "1") as gw:
        sse, ws = await bystanders(gw, "victim")
        blobs = [bytes(rnd.getrandbits(8) for _ in range(rnd.choice((1, 16, 300, 5000, 40000))))
                 for _ in range(20)]
        results = await asyncio.gather(*(raw_exchange(gw, b, read_timeout=4, stop_after_head=False)
                                         for b in blobs))
        open_ = [i for i, (got, how) in enumerate(results) if how == "timeout"]
        ok_ = [i for i, (got, how) in enumerate(results) if parse_status(got) in range(200, 400)]
        # random frames after a valid handshake
        bad_ws = []
        for k in range(5):
            c = WSClient(gw, "victim")
            await c.start()
            await c.send_raw(b"\xff" + bytes(rnd.getrandbits(8) for _ in range(2000)))
            try:
                await c.wait_closed(4)
            except AssertionError as e:
                bad_ws.append(str(e))
        await bystanders_fine(gw, "victim", sse, ws, 0)
        check(not open_, f"connections with random bytes still open after 4 s: {open_}")
        check(not ok_, f"random bytes got a 2xx/3xx answer: {ok_}")
        check(not bad_ws, "\n".join(bad_ws))


async def ws_violation(frames, codes, what, gw_args=(), may_drop=False):
    """frames close the connection with one of codes; may_drop: or drop it
    without a close frame (documented for some violations)."""
    with Gateway("--max-message", "1024", *gw_args) as gw:
        by = WSClient(gw, "wsv")
        await by.start()
        c = WSClient(gw, "wsv")
        await c.start()
        for f in frames:
            try:
                await c.send_raw(f)
            except (ConnectionError, asyncio.TimeoutError):
                break
        try:
            await c.wait_closed(4)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}")
        check((c.close_code is None and may_drop) or c.close_code in codes,
              f"{what}: close code {c.close_code} ({c.close_reason!r}), want one of {sorted(codes)}")
        check(c.close_code is not None or c.eof, f"{what}: connection not closed ({c.end_reason})")
        expect_eq(info(gw, "wsv")["last_id"], 0, f"{what}: nothing published")
        st, _ = publish(gw, "wsv", {"after": 1})
        expect_eq(st, 201, "publish after")
        await by.wait_id(1, 5)
        check(not by.done, f"bystander ws disconnected: {by.end_reason}")


@todo("libwebsockets 4.1.6 accepts unmasked client frames (its server parser records the mask bit but never rejects it); lws exposes no hook to refuse them")
async def test_ws_unmasked():
    "ws: an unmasked client frame closes the connection (1002)"
    await ws_violation([ws_frame(0x1, b'{"a":1}', mask=False)], {1002}, "unmasked frame")


async def test_ws_reserved_opcode():
    "ws: reserved data opcode 0x3 closes the connection (1002)"
    await ws_violation([ws_frame(0x3, b'{"a":1}')], {1002}, "opcode 0x3")


async def test_ws_reserved_control_and_rsv():
    "ws: reserved control opcode 0xB, RSV1 without extension: closed (1002)"
    await ws_violation([ws_frame(0xB, b"x")], {1002}, "opcode 0xB")
    await ws_violation([ws_frame(0x1, b'{"a":1}', rsv=4)], {1002}, "RSV1 set")


async def test_ws_bad_control():
    "ws: fragmented ping and a 200-byte ping are protocol errors (1002)"
    await ws_violation([ws_frame(0x9, b"p", fin=False)], {1002}, "fragmented ping")
    # libwebsockets drops the connection without a close frame here (documented)
    await ws_violation([ws_frame(0x9, b"p" * 200)], {1002}, "200-byte ping", may_drop=True)


async def test_ws_oversized():
    "ws: a frame or fragmented message over --max-message closes the connection (1009)"
    await ws_violation([ws_frame(0x1, b'"' + b"a" * 4094 + b'"')], {1009}, "4 KiB text frame")
    await ws_violation([ws_frame(0x2, b"\x00" * 1025)], {1009}, "1025-byte binary frame")
    await ws_violation([ws_frame(0x1, b'"' + b"a" * 599, fin=False), ws_frame(0x0, b"b" * 600, fin=False),
                        ws_frame(0x0, b"c" * 599 + b'"')], {1009}, "3 fragments of 600 bytes")
    # a header announcing 2^40 bytes must not be waited for
    await ws_violation([b"\x81\xff" + struct.pack("!Q", 1 << 40) + b"\x00\x00\x00\x00" + b"x" * 100],
                       {1009}, "2^40-byte length header")


async def test_ws_bad_utf8():
    "ws: invalid UTF-8 in a text frame closes the connection (1007)"
    await ws_violation([ws_frame(0x1, b'"\xff\xfe"')], {1007}, "invalid UTF-8")
    await ws_violation([ws_frame(0x1, b'"\xc3', fin=False), ws_frame(0x0, b'(x"')], {1007},
                       "invalid UTF-8 across fragments")


async def test_ws_text_publishes():
    "ws: valid text/binary/fragmented frames are published (the control case)"
    with Gateway("--max-message", "1024") as gw:
        c = WSClient(gw, "wsp")
        await c.start()
        await c.send_text('{"hello": "wörld"}')
        await c.send_text("plain text")
        await c.send_binary(b"\x00\x01\xff")
        await c.send_frame(0x1, b'{"frag', fin=False)
        await c.send_frame(0x9, b"interleaved ping")
        await c.send_frame(0x0, b'": 1}')
        await c.send_text('"' + "a" * 1022 + '"')   # exactly 1024 bytes
        deadline = time.monotonic() + 5
        while info(gw, "wsp")["last_id"] < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        st, _, body = get(gw, "/channels/wsp?transport=poll&since=0")
        msgs = json.loads(body)["messages"]
        expect_eq([m["data"] for m in msgs[:2]], [{"hello": "wörld"}, "plain text"], "text frames")
        expect_eq((msgs[2].get("binary"), base64.b64decode(msgs[2]["data"])), (True, b"\x00\x01\xff"),
                  "binary frame")
        expect_eq(msgs[3]["data"], {"frag": 1}, "fragmented frame")
        expect_eq(msgs[4]["data"], "a" * 1022, "1024-byte frame")
        expect_eq(len(msgs), 5, "message count")
        await c.wait_for(lambda: c.pongs, 3, "the pong for the interleaved ping")
        expect_eq(c.pongs, [b"interleaved ping"], "pong payload")
        check(not c.done, f"sender disconnected: {c.end_reason} {c.close_code}")


R = {}
N_SLOW = 1500
SIZE = 4096


async def test_slow_consumers():
    "--outq-limit 262144: never-reading sse and ws clients while 6 MB is published"
    with Gateway("--outq-limit", "262144", "--history-size", "2000") as gw:
        ch = "slow"
        normal = [SSEClient(gw, ch), WSClient(gw, ch)]
        slow = [SSEClient(gw, ch, rcvbuf=4096), WSClient(gw, ch, rcvbuf=4096)]
        for c in normal + slow:
            await c.start()
        for c in slow:
            c.pause()
        payloads = [payload(i, size=SIZE) for i in range(1, N_SLOW + 1)]
        R["payloads"] = payloads
        pub = Publisher(gw)
        try:
            # paced (about 2 MB/s): a normal reader keeps within the 64 KiB
            # lag limit even on a loaded machine; the never-reading ones
            # still fall behind by megabytes
            R["acks"] = await pub.apublish_many(ch, payloads, interval=0.002)
        finally:
            pub.close()
        R["epoch"] = pub.epochs[ch]
        for c in normal:
            try:
                await c.wait_count(N_SLOW, 15)
            except AssertionError as e:
                R.setdefault("normal_err", []).append(str(e))
        R["normal"] = normal
        await asyncio.sleep(0.5)
        R["metrics"] = metrics(gw)
        for c in slow:
            c.resume()
        for c in slow:
            try:
                await c.wait_done(10)
            except AssertionError as e:
                # its cursor is not final: resuming with it now would count
                # what it still reads twice
                R.setdefault("resume_err", []).append(f"not ended 10 s after it read again: {e}")
        R["slow"] = slow
        # they come back with their cursor and lose nothing still in history
        resumed = []
        for c in slow:
            if c.kind == "sse":
                r = SSEClient(gw, ch, last_event_id=c.cursor)
            else:
                r = WSClient(gw, ch, since=c.cursor)
            try:
                await r.start()
                await r.wait_for(lambda: len(c.messages) + len(r.messages) >= N_SLOW, 10, "the rest")
            except AssertionError as e:
                R.setdefault("resume_err", []).append(str(e))
            resumed.append(r)
        R["resumed"] = resumed
        for c in normal + slow + resumed:
            c.abort()
        expect_eq(R["acks"], list(range(1, N_SLOW + 1)), "acks")


async def test_normal_lossless():
    "a normal client on the same channel loses nothing"
    check("normal" in R, "scenario did not run")
    for c in R["normal"]:
        prob = ids_problem(c.ids(), list(range(1, N_SLOW + 1))) or epochs_problem(c.messages, R["epoch"])
        check(prob is None, f"normal {c.kind}: {prob} ({c.end_reason}) {R.get('normal_err')}")
        check([m["data"] for m in c.messages] == R["payloads"], f"normal {c.kind}: payloads differ")


def slow_cut(kind):
    check("slow" in R, "scenario did not run")
    c = [s for s in R["slow"] if s.kind == kind][0]
    check(c.done, f"slow {kind} client was not cut off: {c.describe()}")
    check(len(c.messages) < N_SLOW, f"slow {kind} client got all {N_SLOW} messages: never cut off")
    prob = ids_problem(c.ids(), list(range(1, len(c.messages) + 1)))
    check(prob is None, f"slow {kind}: what it got before the cut is not a prefix: {prob}")
    return c


async def test_slow_sse_cut():
    "the never-reading sse client is cut off"
    slow_cut("sse")


async def test_slow_ws_cut():
    "the never-reading ws client is cut off (close 1008 if a close frame gets through)"
    c = slow_cut("ws")
    check(c.close_code in (None, 1008), f"close code {c.close_code}, want 1008")


async def test_slow_metric():
    "/metrics counts anypush_slow_consumers_total > 0"
    check("metrics" in R, "scenario did not run")
    v = metric_sum(R["metrics"], "anypush_slow_consumers_total")
    check(v is not None, "no anypush_slow_consumers_total in /metrics")
    check(v >= 2, f"anypush_slow_consumers_total = {v}, want >= 2 (one sse, one ws)")


async def test_slow_resume():
    "the cut-off clients resume with their cursor and lose nothing"
    check("resumed" in R, "scenario did not run")
    check(not R.get("resume_err"), "\n".join(R.get("resume_err", [])))
    for c, r in zip(R["slow"], R["resumed"]):
        ids = c.ids() + r.ids()
        prob = ids_problem(ids, list(range(1, N_SLOW + 1))) or epochs_problem(c.messages + r.messages, R["epoch"])
        check(prob is None, f"{c.kind} after resume: {prob}")


async def test_transports_disabled():
    "--transports poll,sse: ws and longpoll answer 404 transport_disabled"
    with Gateway("--transports", "poll,sse") as gw:
        up = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
              "Sec-WebSocket-Protocol": "anypush.v1"}
        expect_error(get(gw, "/channels/d?transport=ws", headers=up), 404, "transport_disabled",
                     what="transport=ws")
        expect_error(get(gw, "/channels/d", headers=up), 404, "transport_disabled",
                     what="Upgrade: websocket without transport")
        expect_error(get(gw, "/channels/d?transport=longpoll&timeout=1"), 404, "transport_disabled",
                     what="transport=longpoll")
        st, _, _ = get(gw, "/channels/d?transport=poll")
        expect_eq(st, 200, "poll still works")
        sse = SSEClient(gw, "d")
        await sse.start()
        publish(gw, "d", 1)
        await sse.wait_id(1, 5)


if __name__ == "__main__":
    raise SystemExit(run([
        test_malformed_requests, test_oversized_headers, test_slowloris, test_slowloris_drip,
        test_random_bytes, test_ws_unmasked, test_ws_reserved_opcode, test_ws_reserved_control_and_rsv,
        test_ws_bad_control, test_ws_oversized, test_ws_bad_utf8, test_ws_text_publishes,
        test_slow_consumers, test_normal_lossless, test_slow_sse_cut, test_slow_ws_cut, test_slow_metric,
        test_slow_resume, test_transports_disabled,
    ], timeout=30))
