#!/usr/bin/env python3
"""Idempotency keys: a publish retried with the same key (HTTP
Idempotency-Key header, /ws "key" field) is answered with the first one's
id and epoch and stored and delivered once, on any transport; the same key
with another message is a 422; bad keys are refused; keys expire with the
window, are bounded in number, outlive a channel's reclaim, and sixteen
concurrent publishes with one key store one message."""

import asyncio
import json
import socket
import threading
import time

from gwlib import (Gateway, MuxClient, SSEClient, WSClient, check, expect_eq, expect_error, info,
                   metric_sum, metrics, request, run)

BODY = b'{"order":42}'


def keyed(gw, ch, key, body=BODY, ctype="application/json", query="", client=None):
    """POST with an Idempotency-Key: (status, headers, parsed body)."""
    hdrs = {"Content-Type": ctype}
    if client is not None:
        hdrs["X-Client-Id"] = client
    if key is not None:
        hdrs["Idempotency-Key"] = key
    st, h, b = request(gw, "POST", f"/channels/{ch}{query}", body=body, headers=hdrs)
    try:
        j = json.loads(b)
    except ValueError:
        j = b
    return st, h, j


def raw_post(gw, ch, key_bytes):
    """A publish whose Idempotency-Key header is sent as raw bytes (http.client
    refuses control characters): (status, body bytes)."""
    head = (b"POST /channels/" + ch.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Idempotency-Key: " + key_bytes + b"\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(head)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


async def subscribers(gw, ch):
    sse = SSEClient(gw, ch)
    ws = WSClient(gw, ch)
    await sse.start()
    await ws.start()
    return sse, ws


async def settle(gw, ch, subs, marker):
    """Publish a marker without a key and wait for it on every subscriber:
    anything a replay would have delivered has arrived by then."""
    st, _, j = keyed(gw, ch, None, body=b'{"marker":%d}' % marker)
    expect_eq(st, 201, "marker publish")
    for s in subs:
        await s.wait_for(lambda s=s: any(m.get("id") == j["id"] for m in s.messages), 5, f"marker on {s.kind}")


def data_of(sub):
    return [m.get("data") for m in sub.messages]


async def test_http_retry():
    "HTTP: a retry with the same Idempotency-Key gets the same id and epoch, Idempotent-Replayed, and no second delivery (SSE, WS)"
    with Gateway() as gw:
        ch = "idem:http"
        sse, ws = await subscribers(gw, ch)
        st1, h1, j1 = keyed(gw, ch, "order-42")
        expect_eq(st1, 201, "first publish")
        check("idempotent-replayed" not in h1, f"first publish says replayed: {h1}")
        st2, h2, j2 = keyed(gw, ch, "order-42")
        expect_eq(st2, 201, "retry")
        expect_eq(h2.get("idempotent-replayed"), "true", "Idempotent-Replayed on the retry")
        expect_eq(j2, j1, "the retry's reply")
        await settle(gw, ch, (sse, ws), 1)
        for s in (sse, ws):
            expect_eq(data_of(s), [{"order": 42}, {"marker": 1}], f"{s.kind} deliveries")
        expect_eq(info(gw, ch)["last_id"], 2, "last id (the message and the marker)")
        m = metrics(gw)
        expect_eq(metric_sum(m, "anypush_idempotent_replays_total"), 1, "replays counter")
        expect_eq(metric_sum(m, "anypush_idempotency_keys"), 1, "keys gauge")
        # the same key on another channel is another key
        st3, h3, j3 = keyed(gw, "idem:other", "order-42")
        expect_eq((st3, j3["id"], "idempotent-replayed" in h3), (201, 1, False), "same key, other channel")
        # browsers may send the header and read the answer's
        st, h, _ = request(gw, "OPTIONS", f"/channels/{ch}")
        check("Idempotency-Key" in h.get("access-control-allow-headers", ""), f"preflight: {h}")
        check("Idempotent-Replayed" in h1.get("access-control-expose-headers", ""), f"expose: {h1}")
        sse.abort()
        await ws.close()


async def test_ws_retry():
    "/ws: a publish retried with the same key gets an ack with the same id and replayed:true, delivered once"
    with Gateway() as gw:
        ch = "idem:ws"
        m = MuxClient(gw)
        await m.start()
        await m.subscribe(ch)
        sse = SSEClient(gw, ch)
        await sse.start()
        a1 = await m.publish(ch, {"order": 7}, key="k.7:x_y-z")
        a2 = await m.publish(ch, {"order": 7}, key="k.7:x_y-z")
        check("replayed" not in a1, f"first ack says replayed: {a1}")
        expect_eq(a2.get("replayed"), True, "replayed in the retry's ack")
        expect_eq((a2["id"], a2["epoch"]), (a1["id"], a1["epoch"]), "retry ack id/epoch")
        await settle(gw, ch, (sse, m), 2)
        expect_eq(data_of(sse), [{"order": 7}, {"marker": 2}], "SSE deliveries")
        expect_eq(data_of(m), [{"order": 7}, {"marker": 2}], "/ws deliveries")
        # binary publishes carry the key on their op frame
        ref = await m.send_op({"op": "publish", "channel": ch, "binary": True, "key": "bin-1"})
        await m.send_binary(b"\x00\x01")
        b1 = await m.wait_ref(ref)
        ref = await m.send_op({"op": "publish", "channel": ch, "binary": True, "key": "bin-1"})
        await m.send_binary(b"\x00\x01")
        b2 = await m.wait_ref(ref)
        expect_eq((b2.get("type"), b2.get("id"), b2.get("replayed")), ("ack", b1.get("id"), True), "binary retry")
        expect_eq(info(gw, ch)["last_id"], 3, "last id")
        expect_eq(m.problems, [], "problems")
        sse.abort()
        await m.close()


async def test_any_transport():
    "the key is the channel's, not the transport's: HTTP then /ws, and /ws then HTTP, store one message each"
    with Gateway() as gw:
        ch = "idem:any"
        m = MuxClient(gw)
        await m.start()
        st, h, j = keyed(gw, ch, "first-http")
        a = await m.publish(ch, {"order": 42}, key="first-http")
        expect_eq((a.get("id"), a.get("epoch"), a.get("replayed")), (j["id"], j["epoch"], True), "/ws after HTTP")
        a = await m.publish(ch, {"order": 42}, key="first-ws")
        st, h, j = keyed(gw, ch, "first-ws")
        expect_eq((st, j["id"], h.get("idempotent-replayed")), (201, a["id"], "true"), "HTTP after /ws")
        expect_eq(info(gw, ch)["last_id"], 2, "last id")
        await m.close()


async def test_conflict():
    "the same key with another body, event, content or exclude_sender: 422 idempotency_conflict (/ws: error frame), nothing stored"
    with Gateway() as gw:
        ch = "idem:conflict"
        st, _, j = keyed(gw, ch, "k1", client="alice")
        expect_eq(st, 201, "first")
        for what, kw in (("another body", {"body": b'{"order":43}'}),
                         ("another event", {"query": "?event=paid"}),
                         ("text, not JSON", {"body": BODY, "ctype": "text/plain"}),
                         ("binary", {"ctype": "application/octet-stream"}),
                         ("exclude_sender", {"query": "?exclude_sender=1"})):
            st, h, body = request(gw, "POST", f"/channels/{ch}{kw.get('query', '')}", body=kw.get("body", BODY),
                                  headers={"Content-Type": kw.get("ctype", "application/json"),
                                           "Idempotency-Key": "k1", "X-Client-Id": "alice"})
            expect_error((st, h, body), 422, "idempotency_conflict", what)
        m = MuxClient(gw)
        await m.start()
        f = await m.op({"op": "publish", "channel": ch, "data": {"order": 44}, "key": "k1"}, ref=77)
        expect_eq((f.get("type"), f.get("ref"), f.get("code")), ("error", 77, "idempotency_conflict"), "/ws conflict")
        expect_eq(info(gw, ch)["last_id"], 1, "nothing stored")
        # the same data from another client, or re-encoded JSON, is the same
        # message; so is exclude_sender without a client id (it means nothing)
        st, h, j2 = keyed(gw, ch, "k1", body=b'{ "order" : 42 }')
        expect_eq((st, j2, h.get("idempotent-replayed")), (201, j, "true"), "same JSON, other spacing")
        st, h, j2 = keyed(gw, ch, "k1", query="?exclude_sender=1")
        expect_eq((st, j2, h.get("idempotent-replayed")), (201, j, "true"), "same JSON, other spacing")
        await m.close()


async def test_bad_keys():
    "hostile keys: 65 chars, empty, control chars, non-ASCII, spaces, NUL escapes, non-strings: 400 / error frame bad_idempotency_key"
    with Gateway() as gw:
        ch = "idem:bad"
        for k in ["a" * 65, "", "a b", "k/1", "k,1", "k;1", "ké"]:
            st, h, body = request(gw, "POST", f"/channels/{ch}", body=BODY,
                                  headers={"Content-Type": "application/json",
                                           "Idempotency-Key": k.encode("utf-8").decode("latin-1")})
            expect_error((st, h, body), 400, "bad_idempotency_key", f"HTTP key {k!r}")
        for raw in (b"a\x01b", b"a\x7fb", b"\xc3\xa9t\xc3\xa9", b"a\tb", b"\xff"):
            st, body = raw_post(gw, ch, raw)
            # the router refuses some heads before the key is read: any
            # clear JSON 400 will do, as long as nothing is stored
            check(st == 400 and b'"error"' in body, f"raw key {raw!r}: {st} {body[:200]!r}")
        st, _, j = keyed(gw, ch, "a" * 64)
        expect_eq(st, 201, "64 chars")
        m = MuxClient(gw)
        await m.start()
        for i, k in enumerate(["a" * 65, "", "a b", "ké", "ab\u0000cd", "\u0000", "a\nb", 5, None, True, ["k"],
                               {"k": 1}]):
            f = await m.op({"op": "publish", "channel": ch, "data": 1, "key": k}, ref=100 + i)
            expect_eq((f.get("type"), f.get("ref"), f.get("code")), ("error", 100 + i, "bad_idempotency_key"),
                      f"/ws key {k!r}")
        # an escape that spells a valid key is still an escape: refused
        await m.send_text('{"op":"publish","channel":"idem:bad","data":1,"key":"\\u0061b","ref":200}')
        f = await m.wait_ref(200)
        expect_eq(f.get("code"), "bad_idempotency_key", "escaped key")
        a = await m.publish(ch, 1, key="b" * 64)
        check(a.get("type") == "ack" and "replayed" not in a, f"64 chars on /ws: {a}")
        expect_eq(info(gw, ch)["last_id"], 2, "only the two good keys stored")
        await m.close()


async def test_window_expiry():
    "--idempotency-window 1: after the window a retry is stored again; window 0: keys are checked, never remembered"
    with Gateway("--idempotency-window", "1") as gw:
        ch = "idem:window"
        _, _, j1 = keyed(gw, ch, "w")
        _, h, j2 = keyed(gw, ch, "w")
        expect_eq((j2, h.get("idempotent-replayed")), (j1, "true"), "within the window")
        await asyncio.sleep(1.6)
        st, h, j3 = keyed(gw, ch, "w")
        expect_eq((st, j3["id"], "idempotent-replayed" in h), (201, 2, False), "after the window")
        # the watcher's tick drops expired keys nobody asks for again
        keyed(gw, ch, "gone")
        t0 = time.monotonic()
        while metric_sum(metrics(gw), "anypush_idempotency_keys") != 0:
            check(time.monotonic() - t0 < 5, "expired keys still counted after 5 s")
            await asyncio.sleep(0.1)
    with Gateway("--idempotency-window", "0") as gw:
        ch = "idem:off"
        _, _, j1 = keyed(gw, ch, "w")
        st, h, j2 = keyed(gw, ch, "w")
        expect_eq((st, j2["id"], "idempotent-replayed" in h), (201, 2, False), "window 0: stored again")
        expect_error(request(gw, "POST", f"/channels/{ch}", body=BODY,
                             headers={"Idempotency-Key": "a b"}), 400, "bad_idempotency_key", "window 0, bad key")
        expect_eq(metric_sum(metrics(gw), "anypush_idempotency_keys"), 0, "keys gauge")


async def test_bound():
    "--idempotency-keys 3: the oldest key is dropped first; the gauge stays at 3"
    with Gateway("--idempotency-keys", "3") as gw:
        ch = "idem:bound"
        ids = {k: keyed(gw, ch, k)[2]["id"] for k in ("k1", "k2", "k3", "k4")}
        expect_eq(metric_sum(metrics(gw), "anypush_idempotency_keys"), 3, "keys gauge")
        _, h, j = keyed(gw, ch, "k4")
        expect_eq((j["id"], h.get("idempotent-replayed")), (ids["k4"], "true"), "newest kept")
        _, h, j = keyed(gw, ch, "k2")
        expect_eq((j["id"], h.get("idempotent-replayed")), (ids["k2"], "true"), "k2 kept")
        _, h, j = keyed(gw, ch, "k1")
        expect_eq((j["id"], "idempotent-replayed" in h), (5, False), "oldest dropped: stored again")
        expect_eq(metric_sum(metrics(gw), "anypush_idempotency_keys"), 3, "keys gauge")


async def wait_no_channels(gw, what):
    t0 = time.monotonic()
    while metric_sum(metrics(gw), "anypush_channels") != 0:
        check(time.monotonic() - t0 < 10, f"{what}: not reclaimed within 10 s")
        await asyncio.sleep(0.1)


async def test_reclaim():
    "keys outlive a channel's reclaim (the tomb), and go with the tomb when it is forgotten"
    with Gateway("--history-age", "1", "--max-channels", "1") as gw:
        ch = "idem:tomb"
        _, _, j1 = keyed(gw, ch, "t")
        await wait_no_channels(gw, ch)
        st, h, j2 = keyed(gw, ch, "t")
        expect_eq((st, j2, h.get("idempotent-replayed")), (201, j1, "true"), "retry after the reclaim")
        expect_eq(metric_sum(metrics(gw), "anypush_channels"), 0, "a replay does not bring the channel back")
        # another channel's tomb pushes this one's out (one tomb at most)
        keyed(gw, "idem:other", None)
        await wait_no_channels(gw, "idem:other")
        expect_eq(metric_sum(metrics(gw), "anypush_idempotency_keys"), 0, "keys of the forgotten tomb")
        st, h, j3 = keyed(gw, ch, "t")
        check(st == 201 and "idempotent-replayed" not in h and j3["epoch"] != j1["epoch"],
              f"after the tomb is gone: {st} {h} {j3}")


async def test_concurrent():
    "16 parallel identical keyed publishes with --http-threads 4: exactly one stored, all answered with its id"
    with Gateway("--http-threads", "4") as gw:
        ch = "idem:race"
        sse = SSEClient(gw, ch)
        await sse.start()
        for round_ in range(3):
            key = f"race-{round_}"
            barrier = threading.Barrier(16)
            results = []
            lock = threading.Lock()

            def one():
                barrier.wait(5)
                r = keyed(gw, ch, key)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=one) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            expect_eq(len(results), 16, "answers")
            expect_eq(sorted({r[0] for r in results}), [201], "statuses")
            expect_eq(len({r[2]["id"] for r in results}), 1, f"ids {[r[2] for r in results]}")
            fresh = [r for r in results if "idempotent-replayed" not in r[1]]
            expect_eq(len(fresh), 1, "answers without Idempotent-Replayed")
        expect_eq(info(gw, ch)["last_id"], 3, "stored: one per key")
        await settle(gw, ch, (sse,), 9)
        expect_eq(len(sse.messages), 4, "SSE deliveries (3 and the marker)")
        sse.abort()


if __name__ == "__main__":
    raise SystemExit(run([test_http_retry, test_ws_retry, test_any_transport, test_conflict, test_bad_keys,
                          test_window_expiry, test_bound, test_reclaim, test_concurrent], budget=90.0))
