#!/usr/bin/env python3
"""The multiplexed WebSocket, GET /ws: subscribe, unsubscribe and publish
with acknowledgements, cursors and resume, gaps, many channels on one
connection, acks under concurrent publishers, binary publishing and the
binary-frames mode, and hostile clients (malformed frames, oversize frames,
a client that floods publishes without reading its acks)."""

import asyncio
import os
import base64
import json
import random
import socket
import struct
import time

from gwlib import (Gateway, diag, MuxClient, Publisher, SSEClient, WSClient, check, cursor_id,
                   epochs_problem, expect_eq, get, ids_problem, info, make_client, publish, rss_kb, run,
                   todo, ws_frame)


async def marker_barrier(gw, m, ch, tag, timeout=5.0):
    """Publish a marker to ch (which m is subscribed to) and wait for it:
    whatever m would have got before it has arrived by then."""
    st, body = publish(gw, ch, {"marker": tag})
    expect_eq(st, 201, f"marker publish to {ch}")
    await m.wait_for(lambda: any(x.get("channel") == ch and x.get("id") == body["id"]
                                 for x in m.messages[-20:]), timeout, f"marker {tag} on {ch}")


async def test_welcome():
    "/ws: welcome frame with a generated client id and heartbeat; ?client=ID is kept"
    with Gateway() as gw:
        a = MuxClient(gw)
        await a.start()
        w = a.welcome
        expect_eq(w.get("type"), "welcome", "first frame type")
        expect_eq(w.get("heartbeat"), 15, "heartbeat")
        cid = w.get("client")
        check(isinstance(cid, str) and 16 <= len(cid) <= 64 and cid.replace("-", "").replace("_", "").isalnum(),
              f"generated client id {cid!r}")
        expect_eq(a.subprotocol, "anypush.v1", "subprotocol")
        b = MuxClient(gw, client="alice_1")
        await b.start()
        expect_eq(b.welcome.get("client"), "alice_1", "client id from ?client=")
        c = MuxClient(gw)
        await c.start()
        check(c.welcome.get("client") != cid, "two connections got the same generated id")
        for x in (a, b, c):
            expect_eq(x.problems, [], "problems")
            await x.close()


async def test_subscribe_publish_unsubscribe():
    "/ws: subscribe at the tail, publish with ack id and from, unsubscribe stops delivery"
    with Gateway() as gw:
        for i in range(5):
            st, body = publish(gw, "m:a", {"old": i})
        ea = body["epoch"]
        m = MuxClient(gw, client="ws-alice")
        await m.start()
        ack = await m.subscribe("m:a")
        expect_eq(ack, {"type": "ack", "ref": 1, "cursor": f"{ea}:5"}, "subscribe ack (tail of 5)")
        ack = await m.subscribe("m:b")
        eb = info(gw, "m:b")["epoch"]
        expect_eq(ack, {"type": "ack", "ref": 2, "cursor": f"{eb}:0"}, "subscribe ack on an empty channel")
        ack = await m.publish("m:a", {"text": "hi"}, event="chat")
        expect_eq(ack, {"type": "ack", "ref": 3, "id": 6, "epoch": ea}, "publish ack")
        await m.wait_count(1, 5)
        msg = m.messages[0]
        expect_eq((msg["channel"], msg["epoch"], msg["id"], msg["event"], msg["data"], msg.get("from")),
                  ("m:a", ea, 6, "chat", {"text": "hi"}, "ws-alice"), "the published message as received")
        expect_eq(m.cursors["m:a"], f"{ea}:6", "m:a cursor after it")
        check(isinstance(msg.get("ts"), int) and abs(msg["ts"] / 1000 - time.time()) < 60, f"ts {msg.get('ts')}")
        # an HTTP publish reaches the /ws subscriber too
        st, body = publish(gw, "m:b", [1, 2, 3], event="nums", client="someone")
        expect_eq(st, 201, "http publish")
        await m.wait_count(2, 5)
        expect_eq(body.get("epoch"), eb, "the epoch of m:b in the publish reply")
        expect_eq({k: m.messages[1].get(k) for k in ("channel", "epoch", "id", "event", "data", "from")},
                  {"channel": "m:b", "epoch": eb, "id": 1, "event": "nums", "data": [1, 2, 3], "from": "someone"},
                  "http-published message on /ws")
        # subscribing twice is an error with the ref, and changes nothing
        err = await m.op({"op": "subscribe", "channel": "m:a"})
        expect_eq((err.get("type"), err.get("code")), ("error", "already_subscribed"), "second subscribe")
        expect_eq(err.get("ref"), m._ref, "error ref")
        # unsubscribe: an ack with the ref, then nothing more of m:a
        ack = await m.unsubscribe("m:a")
        expect_eq(ack, {"type": "ack", "ref": m._ref}, "unsubscribe ack")
        publish(gw, "m:a", {"after": "unsubscribe"})
        await marker_barrier(gw, m, "m:b", "after-unsub")
        await asyncio.sleep(0.2)
        late = [x for x in m.messages if x["channel"] == "m:a" and x["id"] > 6]
        expect_eq(late, [], "m:a messages after the unsubscribe ack")
        err = await m.op({"op": "unsubscribe", "channel": "m:a"})
        expect_eq((err.get("type"), err.get("code")), ("error", "not_subscribed"), "second unsubscribe")
        # publishing does not need a subscription, and the publisher does not
        # get messages of channels it is not subscribed to
        ack = await m.publish("m:c", "text")
        expect_eq(ack.get("id"), 1, "publish to an unsubscribed channel")
        await marker_barrier(gw, m, "m:b", "after-c")
        expect_eq([x for x in m.messages if x["channel"] == "m:c"], [], "messages of m:c")
        # subscribe again, resuming where it left
        ack = await m.subscribe("m:a", since="6")
        expect_eq(ack.get("cursor"), f"{ea}:6", "re-subscribe cursor (the plain since with the epoch)")
        await m.wait_for(lambda: any(x["channel"] == "m:a" and x["id"] == 7 for x in m.messages), 5,
                         "m:a id 7 after re-subscribe")
        expect_eq([x["id"] for x in m.on("m:a")], [6, 7], "m:a ids overall")
        expect_eq(epochs_problem(m.messages, {"m:a": ea, "m:b": eb}), None, "epochs")
        expect_eq(m.errors[2:], [], "unexpected errors")
        expect_eq(m.problems, [], "problems")
        await m.close()


async def test_since_resume():
    "/ws: since gives the start cursor in the ack; resume on a new connection loses nothing"
    with Gateway() as gw:
        chans = ["r:a", "r:b", "r:c"]
        pub = Publisher(gw)
        sent = {c: 0 for c in chans}
        order = []

        def pub_some(n, rnd):
            for _ in range(n):
                c = rnd.choice(chans)
                st, body = pub.publish(c, {"c": c, "k": sent[c] + 1})
                assert st == 201, (st, body)
                sent[c] += 1
                order.append((c, body["id"]))

        rnd = random.Random(4)
        await asyncio.to_thread(pub_some, 30, rnd)
        m = MuxClient(gw)
        await m.start()
        acks = [await m.subscribe("r:a", since="0"), await m.subscribe("r:b", since="2"),
                await m.subscribe("r:c")]
        epochs = {c: info(gw, c)["epoch"] for c in chans}
        expect_eq([a.get("cursor") for a in acks],
                  [f"{epochs['r:a']}:0", f"{epochs['r:b']}:2", f"{epochs['r:c']}:{sent['r:c']}"], "ack cursors")
        want = [("r:a", i) for i in range(1, sent["r:a"] + 1)] + [("r:b", i) for i in range(3, sent["r:b"] + 1)]
        await m.wait_count(len(want), 5)
        got = [(x["channel"], x["id"]) for x in m.messages]
        expect_eq(sorted(got), sorted(want), "backlog")
        for c in chans:
            ids = [x["id"] for x in m.on(c)]
            expect_eq(ids, sorted(ids), f"ids of {c} in order")
        # live, then drop the connection abruptly and come back with the cursors
        pub_task = asyncio.create_task(asyncio.to_thread(pub_some, 60, rnd))
        await m.wait_count(len(want) + 15, 10)
        m.abort()
        cursors = dict(m.cursors)
        seen = [(x["channel"], x["id"]) for x in m.messages]
        await asyncio.sleep(0.05)
        m2 = MuxClient(gw)
        await m2.start()
        for c in chans:
            ack = await m2.subscribe(c, since=cursors[c])
            expect_eq(ack.get("cursor"), cursors[c], f"resume ack cursor of {c} (echoed)")
            check(cursors[c].startswith(epochs[c] + ":"), f"cursor of {c} {cursors[c]} is of epoch {epochs[c]}")
        await asyncio.wait_for(pub_task, 15)
        all_live = [(c, i) for (c, i) in order if not (c == "r:b" and i <= 2)
                    and not (c == "r:c" and i <= cursor_id(acks[2]["cursor"]))]
        await m2.wait_for(lambda: len(seen) + len(m2.messages) >= len(all_live), 10, "the rest")
        await asyncio.sleep(0.1)
        got = seen + [(x["channel"], x["id"]) for x in m2.messages]
        for c in chans:
            ids = [i for (cc, i) in got if cc == c]
            first = {"r:a": 1, "r:b": 3, "r:c": cursor_id(acks[2]["cursor"]) + 1}[c]
            prob = ids_problem(ids, list(range(first, sent[c] + 1)))
            check(prob is None, f"{c}: {prob} (cursor at the drop {cursors[c]})")
        prob = epochs_problem(m.messages + m2.messages, epochs)
        check(prob is None, f"over the reconnect: {prob}")
        expect_eq(m2.gaps, [], "gaps")
        expect_eq(m.problems + m2.problems, [], "problems")
        pub.close()
        await m2.close()


async def test_gap():
    "/ws, --history-size 10: since older than history gets a gap frame, then the retained ones"
    with Gateway("--history-size", "10") as gw:
        for i in range(1, 31):
            publish(gw, "g:a", {"n": i})
        for i in range(1, 4):
            publish(gw, "g:b", {"n": i})
        m = MuxClient(gw)
        await m.start()
        await m.subscribe("g:b", since="1")
        await m.subscribe("g:a", since="5")
        await m.wait_count(2 + 10, 5)
        await asyncio.sleep(0.1)
        gaps = [e for e in m.events if e[0] == "gap"]
        expect_eq(len(gaps), 1, "gap frames")
        g = gaps[0][1]
        expect_eq(g, {"type": "gap", "channel": "g:a", "last_seen": 5, "cursor": 20,
                      "epoch": info(gw, "g:a")["epoch"]}, "gap frame")
        pos = m.events.index(gaps[0])
        after = [e[1]["id"] for e in m.events[pos + 1:] if e[0] == "message" and e[1]["channel"] == "g:a"]
        before = [e[1]["id"] for e in m.events[:pos] if e[0] == "message" and e[1]["channel"] == "g:a"]
        expect_eq(before, [], "g:a messages before the gap frame")
        expect_eq(after, list(range(21, 31)), "g:a messages after the gap frame")
        expect_eq([x["id"] for x in m.on("g:b")], [2, 3], "g:b (no gap)")
        expect_eq(m.problems, [], "problems")
        await m.close()


async def test_many_channels_publish_order():
    "/ws subscribed to 60 channels gets 600 messages in publish order"
    with Gateway() as gw:
        chans = [f"many:{i}" for i in range(60)]
        m = MuxClient(gw)
        await m.start()
        for c in chans:
            await m.send_op({"op": "subscribe", "channel": c})
            m.channels.append(c)
        await m.wait_for(lambda: len(m.ack_refs) == 60, 5, "60 subscribe acks")
        expect_eq(m.ack_refs, list(range(1, 61)), "ack refs in order")
        expect_eq(m.errors, [], "errors")
        rnd = random.Random(7)
        seq = [rnd.choice(chans) for _ in range(600)]
        pub = Publisher(gw)
        order = []

        def go():
            for i, c in enumerate(seq):
                st, body = pub.publish(c, {"i": i})
                assert st == 201, (st, body)
                assert pub.epochs.setdefault(c, body["epoch"]) == body["epoch"], (c, body)
                order.append((c, body["id"]))

        await asyncio.to_thread(go)
        pub.close()
        await m.wait_count(600, 10)
        got = [(x["channel"], x["id"]) for x in m.messages]
        if got != order:
            k = next(i for i in range(min(len(got), len(order))) if got[i] != order[i])
            raise AssertionError(f"order differs at position {k}: got {got[k:k + 4]}, want {order[k:k + 4]}")
        expect_eq([x["data"]["i"] for x in m.messages], list(range(600)), "payloads")
        expect_eq(epochs_problem(m.messages, pub.epochs), None, "epochs")
        expect_eq(m.problems, [], "problems")
        await m.close()


async def test_concurrent_publish_acks():
    "4 /ws clients publish 200 each concurrently: unique ack ids 1..800, acks in ref order, SSE sees 1..800"
    with Gateway() as gw:
        ch = "hot"
        listener = SSEClient(gw, ch)
        await listener.start()
        pubs = [MuxClient(gw, client=f"pub{k}") for k in range(4)]
        for p in pubs:
            await p.start()

        async def flood(k, p):
            for i in range(1, 201):
                await p.send_op({"op": "publish", "channel": ch, "data": {"c": k, "i": i}}, ref=i)
            await p.wait_for(lambda: len(p.ctl) >= 200, 15, "200 acks")

        await asyncio.gather(*(flood(k, p) for k, p in enumerate(pubs)))
        ids = {}
        for k, p in enumerate(pubs):
            expect_eq(p.errors, [], f"pub{k} errors")
            expect_eq(p.ack_refs, list(range(1, 201)), f"pub{k}: acks in ref order")
            mine = [p.replies[i].get("id") for i in range(1, 201)]
            check(all(isinstance(x, int) for x in mine), f"pub{k}: ack without id: {mine[:10]}")
            epochs = {p.replies[i].get("epoch") for i in range(1, 201)}
            expect_eq(epochs, {info(gw, ch)["epoch"]}, f"pub{k}: epochs of its acks")
            check(mine == sorted(mine), f"pub{k}: ids of its acks not increasing: {mine[:20]}")
            for i, mid in enumerate(mine, 1):
                check(mid not in ids, f"id {mid} acked twice: {ids.get(mid)} and {(k, i)}")
                ids[mid] = (k, i)
        prob = ids_problem(sorted(ids), list(range(1, 801)))
        check(prob is None, f"acked ids: {prob}")
        await listener.wait_count(800, 10)
        await asyncio.sleep(0.1)
        prob = ids_problem(listener.ids(), list(range(1, 801)))
        check(prob is None, f"sse listener: {prob}")
        prob = epochs_problem(listener.messages, info(gw, ch)["epoch"])
        check(prob is None, f"sse listener: {prob}")
        for msg in listener.messages:
            k, i = ids[msg["id"]]
            if msg["data"] != {"c": k, "i": i} or msg.get("from") != f"pub{k}":
                raise AssertionError(f"id {msg['id']}: got {msg['data']} from {msg.get('from')}, "
                                     f"acked to pub{k} ref {i}")
        expect_eq(listener.problems, [], "listener problems")
        for p in pubs:
            await p.close()


async def test_data_byte_exact():
    "/ws publish: data is stored as written (big integers, 1.50, escapes), on every transport"
    with Gateway() as gw:
        ch = "exact"
        data_text = ('{"big":12345678901234567890,"neg":-98765432109876543210,"f":1.50,"e":1E+400,'
                     '"s":"caf\\u00e9 \\ud83d\\ude00 \\"q\\"","l":[true,false,null,0.000]}')
        sse = SSEClient(gw, ch)
        await sse.start()
        m = MuxClient(gw)
        await m.start()
        await m.subscribe(ch)
        ack = await m.publish_raw_json(ch, data_text)
        expect_eq(ack.get("type"), "ack", f"publish ack {ack}")
        ack2 = await m.publish_raw_json(ch, '{ "a" : [ 1 , 2 ] ,\n "b" : " x y " }')
        expect_eq(ack2.get("type"), "ack", f"publish ack {ack2}")
        await m.wait_count(2, 5)
        await sse.wait_count(2, 5)
        want = '"data":' + data_text + ','
        want2 = '"data":{"a":[1,2],"b":" x y "},'
        texts = [t for t in m.texts if '"type":"message"' in t]
        check(want in texts[0], f"/ws frame {texts[0][:300]!r} lacks {want!r}")
        check(want2 in texts[1], f"/ws frame {texts[1]!r} lacks {want2!r} (whitespace outside strings dropped)")
        sse_texts = [d for (_, _, d) in sse.raw_events if '"type":"message"' in d]
        check(want in sse_texts[0], f"sse data {sse_texts[0][:300]!r} lacks {want!r}")
        st, _, body = get(gw, f"/channels/{ch}?transport=poll&since=0")
        check(want in body.decode(), f"poll reply {body[:300]!r} lacks {want!r}")
        await m.close()


async def test_binary_publish():
    "/ws binary publish (op then a binary frame): every transport gets base64 with binary:true"
    with Gateway() as gw:
        ch = "bin"
        blob = bytes(range(256)) + b"\x00\xff" * 50
        subs = {k: make_client(k, gw, ch, **({"timeout": 5} if k == "longpoll" else {}))
                for k in ("poll", "longpoll", "sse", "ws")}
        for c in subs.values():
            await c.start()
        r = MuxClient(gw)
        await r.start()
        await r.subscribe(ch)
        p = MuxClient(gw, client="binpub")
        await p.start()
        ack = await p.publish_binary(ch, blob, event="file")
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 1), f"binary publish ack {ack}")
        # a second one, empty, right after
        ack = await p.publish_binary(ch, b"")
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 2), f"empty binary publish ack {ack}")
        for name, c in list(subs.items()) + [("/ws", r)]:
            await c.wait_count(2, 8)
            m1, m2 = c.messages[0], c.messages[1]
            expect_eq((m1.get("binary"), m1.get("event"), m1.get("from")), (True, "file", "binpub"),
                      f"{name}: flags of the binary message")
            expect_eq(base64.b64decode(m1["data"]), blob, f"{name}: decoded data")
            expect_eq((m2.get("binary"), m2.get("data")), (True, ""), f"{name}: empty binary message")
            expect_eq(c.problems, [], f"{name}: problems")
        await p.close()
        await r.close()


async def test_binary_frames_mode():
    "/ws hello binary:frames: binary messages come as an envelope (data null, binary frame) plus raw bytes"
    with Gateway() as gw:
        ch = "binf"
        blob = bytes(range(256)) * 3
        f = MuxClient(gw)
        await f.start()
        ack = await f.hello_binary_frames()
        expect_eq(ack.get("type"), "ack", "hello ack")
        await f.subscribe(ch)
        plain = MuxClient(gw)
        await plain.start()
        await plain.subscribe(ch)
        st, body = publish(gw, ch, blob)                       # HTTP octet-stream
        expect_eq(st, 201, "octet-stream publish")
        publish(gw, ch, {"json": True})                        # JSON stays a text frame
        p = MuxClient(gw)
        await p.start()
        ack = await p.publish_binary(ch, b"\x01\x02\x03")   # /ws binary publish
        expect_eq(ack.get("id"), 3, f"binary publish ack {ack}")
        await f.wait_count(3, 5)
        m1, m2, m3 = f.messages[:3]
        expect_eq((m1.get("binary"), m1.get("data"), m1.get("raw")), ("frame", None, blob),
                  "HTTP binary message in frames mode")
        expect_eq((m2.get("data"), m2.get("raw"), "binary" in m2), ({"json": True}, None, False),
                  "JSON message in frames mode")
        expect_eq((m3.get("binary"), m3.get("raw")), ("frame", b"\x01\x02\x03"), "/ws binary message")
        expect_eq(f.binaries, [], "binary frames without an envelope")
        expect_eq(f.problems, [], "problems")
        # the connection that did not ask keeps base64
        await plain.wait_count(3, 5)
        expect_eq((plain.messages[0].get("binary"), base64.b64decode(plain.messages[0]["data"])),
                  (True, blob), "base64 without hello")
        expect_eq(plain.binaries, [], "binary frames on a connection that did not ask")
        for x in (f, plain, p):
            await x.close()


BAD_FRAMES = [
    # (text, expected code, expected ref: an int, None, or ... for "don't care")
    ("nope", "bad_frame", None),
    ("[1,2,3]", "bad_frame", None),
    ('"a string"', "bad_frame", None),
    ("42", "bad_frame", None),
    ("null", "bad_frame", None),
    ("", "bad_frame", None),
    ('{"op":"publish","channel":"h","data":{"x":1},"ref":3', "bad_frame", ...),
    ('{"op":"subscribe","channel":"h","ref":4} trailing', "bad_frame", ...),
    ('{"op":"subscribe","channel":"h","ref":9007199254740992}', "bad_ref", None),
    ('{"op":"subscribe","channel":"h","ref":99999999999999999999999999}', "bad_ref", None),
    ('{"op":"subscribe","channel":"h","ref":1.5}', "bad_ref", None),
    ('{"op":"subscribe","channel":"h","ref":-1}', "bad_ref", None),
    ('{"op":"subscribe","channel":"h","ref":"7"}', "bad_ref", None),
    ('{"op":"subscribe","channel":"h","ref":1e400}', "bad_ref", None),
    ('{"op":"dance","channel":"h","ref":10}', "bad_op", 10),
    ('{"channel":"h","ref":11}', "bad_op", 11),
    ('{"op":17,"channel":"h","ref":12}', "bad_op", 12),
    ('{"op":"subscribe","ref":13}', "bad_channel", 13),
    ('{"op":"subscribe","channel":"bad channel!","ref":14}', "bad_channel", 14),
    ('{"op":"subscribe","channel":"a,b","ref":15}', "bad_channel", 15),
    ('{"op":"publish","channel":"","data":1,"ref":16}', "bad_channel", 16),
    ('{"op":"subscribe","channel":"h","since":17,"ref":17}', "bad_cursor", 17),
    ('{"op":"subscribe","channel":"h","since":"abc","ref":18}', "bad_cursor", 18),
    ('{"op":"subscribe","channel":"h","since":"-1","ref":19}', "bad_cursor", 19),
    ('{"op":"subscribe","channel":"h","since":"1,2","ref":20}', "bad_cursor", 20),
    ('{"op":"subscribe","channel":"h","since":"99999999999999999999999","ref":21}', "bad_cursor", 21),
    ('{"op":"publish","channel":"h","ref":22}', "missing_data", 22),
    ('{"op":"publish","channel":"h","data":1,"event":"bad event","ref":23}', "bad_event", 23),
    ('{"op":"publish","channel":"h","data":1,"event":"' + "e" * 65 + '","ref":24}', "bad_event", 24),
    ('{"op":"unsubscribe","channel":"never","ref":25}', "not_subscribed", 25),
]


async def test_error_frames():
    "/ws malformed frames: an error frame with code and ref each, the connection stays usable"
    with Gateway() as gw:
        other = SSEClient(gw, "h")
        await other.start()
        m = MuxClient(gw)
        await m.start()
        failures = []
        for text, code, ref in BAD_FRAMES:
            n = len(m.ctl)
            await m.send_text(text)
            try:
                await m.wait_for(lambda: len(m.ctl) > n, 3, f"an answer to {text[:60]!r}")
            except AssertionError as e:
                failures.append(str(e))
                break
            f = m.ctl[n]
            if f.get("type") != "error" or f.get("code") != code:
                failures.append(f"{text[:70]!r}: got {f}, want code {code}")
            elif ref is not ... and f.get("ref") != ref:
                failures.append(f"{text[:70]!r}: error ref {f.get('ref')!r}, want {ref!r}")
            elif "ref" not in f:
                failures.append(f"{text[:70]!r}: error frame without ref: {f}")
        # a binary frame with no binary publish before it
        n = len(m.ctl)
        await m.send_binary(b"\x00\x01")
        try:
            await m.wait_for(lambda: len(m.ctl) > n, 3, "an answer to a stray binary frame")
            f = m.ctl[n]
            if (f.get("type"), f.get("code"), f.get("ref")) != ("error", "unexpected_binary", None):
                failures.append(f"stray binary frame: got {f}, want unexpected_binary with ref null")
        except AssertionError as e:
            failures.append(str(e))
        # still usable, nothing was published by the bad frames
        ack = await m.subscribe("h", since="0")
        if ack.get("cursor") != f"{info(gw, 'h')['epoch']}:0":
            failures.append(f"subscribe after the errors: {ack}")
        err = await m.op({"op": "subscribe", "channel": "h"})
        if err.get("code") != "already_subscribed":
            failures.append(f"second subscribe: {err}")
        ack = await m.publish("h", {"ok": 1})
        if ack.get("id") != 1:
            failures.append(f"first publish got {ack}, want id 1 (did a bad frame publish?)")
        await other.wait_count(1, 5)
        expect_eq(other.ids(), [1], "the other client's messages")
        check(m.close_code is None and not m.done, f"connection closed: {m.describe()}")
        expect_eq(m.problems, [], "problems")
        check(not failures, "\n".join(failures))
        await m.close()


async def test_too_many_channels():
    "/ws: 256 channels per connection; the 257th subscribe is too_many_channels"
    with Gateway() as gw:
        m = MuxClient(gw)
        await m.start()
        for i in range(256):
            await m.send_op({"op": "subscribe", "channel": f"tm:{i}"})
            m.channels.append(f"tm:{i}")
        await m.wait_for(lambda: len(m.ctl) >= 256, 10, "256 acks")
        expect_eq(m.errors, [], "errors for the first 256")
        err = await m.op({"op": "subscribe", "channel": "tm:256"})
        expect_eq((err.get("type"), err.get("code")), ("error", "too_many_channels"), "257th subscribe")
        await m.unsubscribe("tm:0")
        m.channels.append("tm:256")
        ack = await m.op({"op": "subscribe", "channel": "tm:256"})
        expect_eq(ack.get("type"), "ack", "subscribe after an unsubscribe")
        publish(gw, "tm:256", 1)
        publish(gw, "tm:255", 2)
        await m.wait_count(2, 5)
        expect_eq(sorted(x["channel"] for x in m.messages), ["tm:255", "tm:256"], "delivery")
        subs = info(gw, "tm:100")["subscribers"]
        expect_eq(subs.get("ws"), 1, "info of one of the channels counts the /ws connection")
        await m.close()


async def test_oversize_frame():
    "/ws --max-message 1024: a bigger frame closes with 1009; others unaffected"
    with Gateway("--max-message", "1024") as gw:
        other = MuxClient(gw)
        await other.start()
        await other.subscribe("o")
        m = MuxClient(gw)
        await m.start()
        ack = await m.publish("o", "x" * 900)
        expect_eq(ack.get("type"), "ack", "a frame under the limit")
        await m.send_text(json.dumps({"op": "publish", "channel": "o", "data": "y" * 5000, "ref": 99}))
        await m.wait_closed(5)
        expect_eq(m.close_code, 1009, f"close code ({m.describe()})")
        check(99 not in m.replies, f"the oversize publish was answered: {m.replies.get(99)}")
        publish(gw, "o", "after")
        await other.wait_count(2, 5)
        expect_eq([x["data"] for x in other.messages], ["x" * 900, "after"], "the other client")
        expect_eq(info(gw, "o")["last_id"], 2, "nothing of the oversize frame was published")
        # a binary frame over the limit after a binary publish
        b = MuxClient(gw)
        await b.start()
        await b.send_op({"op": "publish", "channel": "o", "binary": True})
        await b.send_binary(b"z" * 4000)
        await b.wait_closed(5)
        expect_eq(b.close_code, 1009, f"binary oversize close code ({b.describe()})")
        await other.close()


async def test_invalid_utf8():
    "/ws: a text frame that is not UTF-8 closes with 1007"
    with Gateway() as gw:
        m = MuxClient(gw)
        await m.start()
        await m.send_frame(0x1, b'{"op":"subscribe","channel":"\xff\xfe","ref":1}')
        await m.wait_closed(5)
        expect_eq(m.close_code, 1007, f"close code ({m.describe()})")
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz")


async def test_rapid_malformed():
    "/ws: 1000 malformed frames at once get 1000 error frames; the connection and others stay fine"
    with Gateway() as gw:
        obs = SSEClient(gw, "calm")
        await obs.start()
        m = MuxClient(gw)
        await m.start()
        kinds = ["garbage", "[]", '{"op":"nope","ref":%d}', '{"op":"subscribe","ref":%d}',
                 '{"op":"publish","channel":"calm","ref":%d}', '{"op":"subscribe","channel":"x","since":1,"ref":%d}']
        blob = bytearray()
        for i in range(1000):
            k = kinds[i % len(kinds)]
            blob += ws_frame(0x1, (k % i) if "%d" in k else k)
        pub = Publisher(gw)
        pub_task = asyncio.create_task(pub.apublish_many("calm", [{"n": i} for i in range(50)], interval=0.01))
        await m.send_raw(bytes(blob))
        await m.wait_for(lambda: len(m.ctl) >= 1000, 15, "1000 error frames")
        expect_eq(len(m.errors), 1000, "error frames")
        codes = {}
        for e in m.errors:
            codes[e["code"]] = codes.get(e["code"], 0) + 1
        expect_eq(codes, {"bad_frame": 334, "bad_op": 167, "bad_channel": 167, "missing_data": 166,
                          "bad_cursor": 166}, "error codes")
        ack = await m.subscribe("calm")
        expect_eq(ack.get("type"), "ack", "a valid op after the flood")
        await asyncio.wait_for(pub_task, 10)
        pub.close()
        await obs.wait_count(50, 5)
        expect_eq(obs.ids(), list(range(1, 51)), "the other client's messages")
        expect_eq(epochs_problem(obs.messages, info(gw, "calm")["epoch"]), None, "their epochs")
        expect_eq(info(gw, "calm")["last_id"], 50, "nothing published by the malformed frames")
        check(not m.done, f"connection ended: {m.describe()}")
        await m.close()


async def test_flood_without_reading_acks():
    "/ws: a client flooding publishes without reading acks is throttled; gateway RSS bounded, others served"
    with Gateway("--history-size", "50") as gw:
        obs = SSEClient(gw, "obs")
        await obs.start()
        f = MuxClient(gw, rcvbuf=4096)
        await f.start()
        sock = f._writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        f.pause()                       # never read an ack from here on
        # warm up, then measure
        await asyncio.sleep(0.2)
        rss0 = rss_kb(gw.pid)
        key = b"\x11\x22\x33\x44"
        chunk = b"".join(ws_frame(0x1, '{"op":"publish","channel":"flood","data":%d,"ref":%d}' % (i, i), mask_key=key)
                         for i in range(1000))
        pub = Publisher(gw)
        obs_n = 40
        obs_task = asyncio.create_task(pub.apublish_many("obs", [{"o": i} for i in range(obs_n)], interval=0.05))
        sent = 0
        stalled = False
        peak = rss0
        t0 = time.monotonic()
        limit = 48 << 20
        while sent < limit and time.monotonic() - t0 < 12:
            f._writer.write(chunk)
            try:
                await asyncio.wait_for(f._writer.drain(), 1.5)
            except asyncio.TimeoutError:
                stalled = True
                break
            except ConnectionError as e:
                raise AssertionError(f"the gateway dropped the flooding client after {sent} bytes: {e}")
            sent += len(chunk)
            peak = max(peak, rss_kb(gw.pid))
        last1 = info(gw, "flood")["last_id"]
        await asyncio.sleep(1.0)
        last2 = info(gw, "flood")["last_id"]
        peak = max(peak, rss_kb(gw.pid))
        await asyncio.wait_for(obs_task, 10)
        pub.close()
        await obs.wait_count(obs_n, 5)
        expect_eq(obs.ids(), list(range(1, obs_n + 1)), "the observer during the flood")
        expect_eq(epochs_problem(obs.messages, pub.epochs["obs"]), None, "the observer's epochs")
        grow_mb = (peak - rss0) / 1024
        diag(f"flood: {sent / 1048576:.1f} MiB sent before the stall, {last2} publishes accepted, "
             f"RSS {rss0 // 1024} -> {peak // 1024} MiB")
        check(stalled, f"the gateway kept reading {sent >> 20} MiB of publishes from a client that reads "
                       f"no acks (RSS {rss0 // 1024} -> {peak // 1024} MiB; {last2} published)")
        expect_eq(last2, last1, "publishes accepted while the client reads nothing (not throttled)")
        if os.environ.get("ANYPUSH_SANITIZERS"):
            # ASan's quarantine keeps freed memory (256 MiB by default), so
            # RSS says nothing here; LeakSanitizer checks leaks at exit
            diag(f"sanitizer build: RSS growth {grow_mb:.1f} MiB not asserted")
        else:
            check(grow_mb < 40, f"gateway RSS grew by {grow_mb:.1f} MiB during the flood")
        # once the client reads again, it gets its acks in order and the
        # gateway goes on reading
        f.resume()
        await f.wait_for(lambda: len(f.ctl) >= last2, 15, f"{last2} acks after resuming")
        refs = f.ack_refs[:1000]
        expect_eq(refs, list(range(min(1000, len(refs)))), "first acks in ref order")
        f.abort()
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz after the flood")

async def test_fragmented_frames():
    "/ws: ops and binary data split over continuation frames are reassembled; the total is limited"
    with Gateway("--max-message", "4096") as gw:
        m = MuxClient(gw)
        await m.start()
        await m.subscribe("frag")
        op = json.dumps({"op": "publish", "channel": "frag", "data": {"s": "ü" * 300}, "ref": 50}).encode()
        k = len(op) // 3
        await m.send_frame(0x1, op[:k], fin=False)
        await m.send_frame(0x9, b"ping-in-between")            # a control frame may interleave
        await m.send_frame(0x0, op[k:2 * k], fin=False)
        await m.send_frame(0x0, op[2 * k:], fin=True)
        ack = await m.wait_ref(50)
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 1), "fragmented publish op")
        ref = await m.send_op({"op": "publish", "channel": "frag", "binary": True})
        blob = bytes(range(256)) * 4
        await m.send_frame(0x2, blob[:500], fin=False)
        await m.send_frame(0x0, blob[500:], fin=True)
        ack = await m.wait_ref(ref)
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 2), "fragmented binary data")
        await m.wait_count(2, 5)
        expect_eq(m.messages[0]["data"], {"s": "ü" * 300}, "reassembled JSON data")
        expect_eq(base64.b64decode(m.messages[1]["data"]), blob, "reassembled binary data")
        # fragments adding up to more than --max-message
        await m.send_frame(0x1, b'{"op":"publish","channel":"frag","data":"' + b"a" * 3000, fin=False)
        await m.send_frame(0x0, b"b" * 3000 + b'","ref":51}', fin=True)
        await m.wait_closed(5)
        expect_eq(m.close_code, 1009, f"close code for a fragmented oversize message ({m.describe()})")
        expect_eq(info(gw, "frag")["last_id"], 2, "nothing published by the oversize message")


async def test_since_beyond_last():
    "/ws: since beyond the channel's last id (after a restart) gets a gap, then everything retained"
    with Gateway() as gw:
        for i in range(3):
            publish(gw, "fut", {"n": i})
        m = MuxClient(gw)
        await m.start()
        await m.subscribe("fut", since="10")
        await m.wait_count(3, 5)
        check(m.events and m.events[0][0] == "gap", f"first event {m.events[:1]}, want a gap")
        g = m.gaps[0]
        epoch = info(gw, "fut")["epoch"]
        expect_eq(g, {"type": "gap", "channel": "fut", "last_seen": 10, "cursor": 0, "epoch": epoch}, "gap frame")
        expect_eq(m.ids(), [1, 2, 3], "retained messages after the gap")
        expect_eq(epochs_problem(m.messages, epoch), None, "epochs")
        expect_eq(m.problems, [], "problems")
        await m.close()

async def test_every_ref_answered():
    "/ws: every op with a ref is answered, also a binary publish superseded before its frame came"
    with Gateway() as gw:
        m = MuxClient(gw)
        await m.start()
        await m.subscribe("every")
        # a binary publish waits for its frame; text ops may come in between
        await m.send_op({"op": "publish", "channel": "every", "binary": True}, ref=10)
        ack = await m.op({"op": "publish", "channel": "every", "data": "text"}, ref=11)
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 1), "a text publish while a binary one waits")
        await m.send_binary(b"B1")
        ack = await m.wait_ref(10)
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 2), "the binary publish, completed by its frame")
        # a second binary publish before the first one's frame: the first must
        # not be left unanswered (the client would wait for it forever)
        await m.send_op({"op": "publish", "channel": "every", "binary": True}, ref=20)
        await m.send_op({"op": "publish", "channel": "every", "binary": True}, ref=21)
        await m.send_binary(b"B2")
        await m.wait_ref(21)
        await asyncio.sleep(0.3)
        check(20 in m.replies, f"ref 20 (a binary publish superseded by ref 21) got no answer; "
                               f"answers: {m.ctl[-3:]}")
        expect_eq(m.replies[20].get("type"), "error", f"answer to the superseded binary publish {m.replies[20]}")
        expect_eq((m.replies[21].get("type"), m.replies[21].get("id")), ("ack", 3), "ref 21")
        await m.close()


if __name__ == "__main__":
    raise SystemExit(run([
        test_welcome, test_subscribe_publish_unsubscribe, test_since_resume, test_gap,
        test_many_channels_publish_order, test_concurrent_publish_acks, test_data_byte_exact,
        test_binary_publish, test_binary_frames_mode, test_error_frames, test_too_many_channels,
        test_oversize_frame, test_fragmented_frames, test_since_beyond_last, test_every_ref_answered, test_invalid_utf8, test_rapid_malformed, test_flood_without_reading_acks,
    ], budget=55, timeout=20))
