#!/usr/bin/env python3
"""Messaging semantics on every transport: several channels on one
connection with composite cursors (poll, longpoll, sse with Last-Event-ID,
ws), publish order across channels, client ids and exclude-sender across
mixed transports, event names, and binary data."""

import asyncio
import base64
import random

from gwlib import (Gateway, MuxClient, Publisher, SSEClient, TRANSPORTS, WSClient, check,
                   composite, epochs_problem, expect_eq, get, info, make_client, parse_cursor, publish,
                   request, run, wait_until)

CHANS = ["mc:a", "mc:b", "mc:c"]
LIST = ",".join(CHANS)


def client(kind, gw, ch, since=None, **kw):
    if kind == "poll":
        kw.setdefault("interval", 0.03)
    if kind == "longpoll":
        kw.setdefault("timeout", 5)
    return make_client(kind, gw, ch, since=since, **kw)


def publish_seq(pub, seq, tag):
    """Publish {'tag','k'} to each channel of seq in order; returns [(channel, id)].
    Each channel's epoch stays the one pub.epochs first noted."""
    out = []
    for k, c in enumerate(seq):
        st, body = pub.publish(c, {"tag": tag, "k": k})
        assert st == 201, (st, body)
        assert pub.epochs.setdefault(c, body["epoch"]) == body["epoch"], (c, pub.epochs, body)
        out.append((c, body["id"]))
    return out


def got(c):
    return [(m.get("channel"), m.get("id")) for m in c.messages]


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return f"position {i}: got {a[i:i + 4]}, want {b[i:i + 4]}"
    return f"lengths {len(a)} and {len(b)}: got tail {a[-3:]}, want tail {b[-3:]}"


def channel_epochs(gw):
    """{channel: epoch} of CHANS, as /info tells."""
    return {ch: info(gw, ch)["epoch"] for ch in CHANS}


def sse_cursor_problems(sse, start, epochs):
    """Each SSE message event's id: line must be the composite cursor after
    it, every element with its channel's epoch."""
    last = {ch: i for ch, (_, i) in zip(CHANS, parse_cursor(start, len(CHANS)))}
    out = []
    for m in sse.messages:
        last[m["channel"]] = m["id"]
        want = composite(CHANS, last, epochs)
        if m.get("cursor") != want:
            out.append(f"message {m['channel']}/{m['id']}: id: line {m.get('cursor')!r}, want {want!r}")
    return out


async def multi_scenario(kind):
    rnd = random.Random(kind)
    with Gateway() as gw:
        pub = Publisher(gw)
        pre = await asyncio.to_thread(publish_seq, pub, ["mc:a", "mc:a", "mc:b", "mc:a"], "pre")
        # since: a at 1, b at 0, c at 0 -> backlog a2, b1, a3
        c = client(kind, gw, LIST, since="1,0,0")
        await c.start()
        epochs = channel_epochs(gw)
        expect_eq({ch: epochs[ch] for ch in ("mc:a", "mc:b")}, pub.epochs, f"{kind}: /info and publish epochs")
        if kind in ("sse", "ws"):
            w = c.welcome or {}
            expect_eq(w.get("cursor"), composite(CHANS, {"mc:a": 1}, epochs),
                      f"{kind}: welcome cursor (the plain since with the epochs)")
            check(isinstance(w.get("client"), str) and w["client"], f"{kind}: welcome client {w}")
        want_backlog = [("mc:a", 2), ("mc:b", 1), ("mc:a", 3)]
        await c.wait_count(3, 5)
        expect_eq(sorted(got(c)), sorted(want_backlog), f"{kind}: backlog")
        for ch in CHANS:
            ids = [i for (cc, i) in got(c) if cc == ch]
            expect_eq(ids, sorted(ids), f"{kind}: backlog ids of {ch} in order")
        seq = [rnd.choice(CHANS) for _ in range(60)]
        live = await asyncio.to_thread(publish_seq, pub, seq, "live")
        await c.wait_count(3 + 60, 10)
        check(got(c)[3:] == live, f"{kind}: live messages not in publish order: {first_diff(got(c)[3:], live)}")
        last = {ch: max([i for (cc, i) in pre + live if cc == ch] or [0]) for ch in CHANS}
        expect_eq(c.cursor, composite(CHANS, last, epochs), f"{kind}: cursor after everything")
        if kind == "sse":
            probs = sse_cursor_problems(c, "1,0,0", epochs)
            check(not probs, f"sse id: lines: {probs[:4]}")
        # drop the connection in the middle of a burst, resume with the cursor
        seen = list(got(c))
        burst = [rnd.choice(CHANS) for _ in range(120)]
        task = asyncio.create_task(asyncio.to_thread(publish_seq, pub, burst, "burst"))
        await c.wait_count(63 + 20, 10)
        c.abort()
        seen = got(c)
        cursor = c.cursor
        if kind == "sse":
            # the browser way: the original URL (since=1,0,0) plus Last-Event-ID, which wins
            c2 = SSEClient(gw, LIST, since="1,0,0", last_event_id=cursor)
        else:
            c2 = client(kind, gw, LIST, since=cursor)
        await c2.start()
        burst_ids = await asyncio.wait_for(task, 15)
        everything = want_backlog + live + burst_ids
        await c2.wait_for(lambda: len(seen) + len(c2.messages) >= len(everything), 10, "the rest")
        await asyncio.sleep(0.1)
        allgot = seen + got(c2)
        for ch in CHANS:
            a = [i for (cc, i) in allgot if cc == ch]
            w = [i for (cc, i) in everything if cc == ch]
            expect_eq(a, w, f"{kind}: ids of {ch} over the reconnect (cursor {cursor})")
        if kind == "sse":
            probs = sse_cursor_problems(c2, cursor, epochs)
            check(not probs, f"sse id: lines after Last-Event-ID: {probs[:4]}")
        prob = epochs_problem(c.messages + c2.messages, epochs)
        check(prob is None, f"{kind}: {prob}")
        expect_eq(c.gaps + c2.gaps, [], f"{kind}: gaps")
        expect_eq(c.problems + c2.problems, [], f"{kind}: problems")
        pub.close()


async def test_multi_poll():
    "poll on /channels/a,b,c: composite since/next, publish order, resume with next"
    await multi_scenario("poll")


async def test_multi_longpoll():
    "longpoll on /channels/a,b,c: composite since/next, publish order, resume with next"
    await multi_scenario("longpoll")


async def test_multi_sse():
    "sse on /channels/a,b,c: id: lines carry the composite cursor; Last-Event-ID resumes all channels"
    await multi_scenario("sse")


async def test_multi_ws():
    "ws on /channels/a,b,c: welcome cursor, publish order, resume with the composite since"
    await multi_scenario("ws")


async def test_interleave_backlog_order():
    "backlog of several channels (since=0,0,0) comes in publish order on every transport and /ws"
    with Gateway() as gw:
        pub = Publisher(gw)
        rnd = random.Random(11)
        seq = [rnd.choice(CHANS) for _ in range(50)]
        order = await asyncio.to_thread(publish_seq, pub, seq, "b")
        pub.close()
        failures = []
        for kind in TRANSPORTS:
            c = client(kind, gw, LIST, since="0,0,0")
            await c.start()
            await c.wait_count(50, 5)
            if got(c) != order:
                failures.append(f"{kind}: {first_diff(got(c), order)}")
            if epochs_problem(c.messages, pub.epochs) or c.problems:
                failures.append(f"{kind}: {epochs_problem(c.messages, pub.epochs)} {c.problems[:3]}")
            c.abort()
        m = MuxClient(gw)
        await m.start()
        for ch in CHANS:
            await m.subscribe(ch, since="0")
        await m.wait_count(50, 5)
        per_ch = {ch: [i for (cc, i) in got(m) if cc == ch] for ch in CHANS}
        for ch in CHANS:
            if per_ch[ch] != [i for (cc, i) in order if cc == ch]:
                failures.append(f"/ws: ids of {ch}: {per_ch[ch]}")
        if epochs_problem(m.messages, pub.epochs) or m.problems:
            failures.append(f"/ws: {epochs_problem(m.messages, pub.epochs)} {m.problems[:3]}")
        check(not failures, "\n".join(failures))


async def test_exclude_sender_mixed():
    "exclude_sender from HTTP: every connection of that client id (sse, ws, /ws, poll) skips it, others get it"
    with Gateway() as gw:
        ch = "ex:room"
        alice = [SSEClient(gw, ch, client="alice"), WSClient(gw, ch, client="alice"),
                 client("poll", gw, ch, client="alice"), client("longpoll", gw, ch, client="alice")]
        alice_mux = MuxClient(gw, client="alice")
        others = {"bob/ws": WSClient(gw, ch, client="bob"), "carol/poll": client("poll", gw, ch, client="carol"),
                  "dave/sse": SSEClient(gw, ch, client="dave"), "erin/longpoll": client("longpoll", gw, ch),
                  "frank/ws-mux": MuxClient(gw, client="frank")}
        for c in alice + [alice_mux] + list(others.values()):
            await c.start()
        await alice_mux.subscribe(ch)
        await others["frank/ws-mux"].subscribe(ch)
        for c in alice[:2]:
            expect_eq(c.welcome.get("client"), "alice", f"{c.kind} welcome client")
        expect_eq(alice[2].last_response.headers.get("x-client-id"), "alice", "poll X-Client-Id")
        st, body = publish(gw, ch, {"secret": 1}, client="alice", exclude_sender=True)
        expect_eq(st, 201, "excluded publish")
        excluded_id = body["id"]
        st, body = publish(gw, ch, {"all": 2}, client="alice")
        expect_eq(st, 201, "non-excluded publish by alice")
        st, body = publish(gw, ch, {"all": 3}, exclude_sender=True)   # no X-Client-Id: no effect
        expect_eq(st, 201, "exclude_sender without a client id")
        marker = body["id"]
        for c in alice + [alice_mux] + list(others.values()):
            await c.wait_for(lambda: any(m["id"] == marker for m in c.messages), 8, "the last message")
        await asyncio.sleep(0.15)
        for c in alice + [alice_mux]:
            expect_eq(c.ids(), [excluded_id + 1, marker], f"alice's {c.kind} connection")
        for name, c in others.items():
            expect_eq(c.ids(), [excluded_id, excluded_id + 1, marker], name)
            m = c.messages[0]
            expect_eq((m["data"], m.get("from")), ({"secret": 1}, "alice"), f"{name}: excluded message")
            expect_eq(c.problems, [], f"{name}: problems")
        expect_eq(others["dave/sse"].messages[2].get("from"), None, "from without X-Client-Id")


async def test_exclude_sender_from_ws():
    "exclude_sender from a /ws publish: the sender's connections skip it, SSE/poll/ws listeners get it"
    with Gateway() as gw:
        ch = "ex:ws"
        sender = MuxClient(gw, client="zed")
        await sender.start()
        await sender.subscribe(ch)
        zed_sse = SSEClient(gw, ch, client="zed")
        listeners = {"sse": SSEClient(gw, ch), "poll": client("poll", gw, ch), "ws": WSClient(gw, ch)}
        for c in [zed_sse] + list(listeners.values()):
            await c.start()
        ack = await sender.publish(ch, {"hidden": True}, exclude_sender=True)
        expect_eq(ack.get("id"), 1, "ack")
        ack = await sender.publish(ch, {"visible": True})
        expect_eq(ack.get("id"), 2, "ack")
        for name, c in listeners.items():
            await c.wait_count(2, 5)
            expect_eq([(m["id"], m["data"], m.get("from")) for m in c.messages],
                      [(1, {"hidden": True}, "zed"), (2, {"visible": True}, "zed")], f"{name} listener")
        await sender.wait_count(1, 5)
        await zed_sse.wait_count(1, 5)
        await asyncio.sleep(0.1)
        expect_eq(sender.ids(), [2], "the /ws sender")
        expect_eq(zed_sse.ids(), [2], "another connection of the sender (sse)")
        # the same through a single-channel ws connection publishing by frames
        # is not excluded (no option there), but `from` is its client id
        w = WSClient(gw, ch, client="yan")
        await w.start()
        await w.send_json({"via": "ws"})
        await w.wait_count(1, 5)
        expect_eq((w.messages[0]["data"], w.messages[0].get("from")), ({"via": "ws"}, "yan"), "ws frame publish")


async def test_excluded_moves_cursor():
    "own broadcasts move the sender's cursor on every transport: no false gap once they leave history"
    with Gateway("--history-age", "2") as gw:
        ch = "ex:cursor"
        # a held long poll is not woken for a message it is excluded from
        # (that would be an empty reply); its next reply moves the cursor
        alice = {k: client(k, gw, ch, client="alice", **({"timeout": 1} if k == "longpoll" else {}))
                 for k in ("poll", "longpoll", "sse", "ws")}
        for c in alice.values():
            await c.start()
        for i in range(3):
            st, body = publish(gw, ch, {"own": i}, client="alice", exclude_sender=True)
            expect_eq(st, 201, "excluded publish")
        epoch = body["epoch"]
        for kind, c in alice.items():
            await c.wait_for(lambda: c.cursor == f"{epoch}:3", 5, f"{kind}: cursor moved past its own 3 broadcasts")
        # the three leave history (--history-age 2: waited for, not slept
        # for); resuming from where each connection is must not report a gap
        await wait_until(lambda: info(gw, ch)["retained"] == 0, 10,
                         what=f"the 3 messages of {ch} to age out of history")
        expect_eq((info(gw, ch)["oldest_id"], info(gw, ch)["last_id"]), (4, 3), "history after aging")
        for kind, c in alice.items():
            cur = c.cursor
            c.abort()
            again = client(kind, gw, ch, client="alice", since=cur,
                           **({"timeout": 1} if kind == "longpoll" else {}))
            await again.start()
            st, _ = publish(gw, ch, {"after": 1}, client="bob")
            await again.wait_for(lambda: len(again.messages) >= 1, 5, f"{kind}: the next message")
            expect_eq(again.gaps, [], f"{kind}: resumed from {cur} without a false gap")
            expect_eq((again.messages[0]["epoch"], again.problems), (epoch, []), f"{kind}: the same incarnation")
            again.abort()


async def test_client_ids():
    "client ids: SSE/WS welcome carry them, poll/longpoll reply X-Client-Id, ?client=ID is echoed"
    with Gateway() as gw:
        ch = "ids"
        st, hdrs, body = get(gw, f"/channels/{ch}?transport=poll")
        expect_eq(st, 200, "poll")
        cid = hdrs.get("x-client-id", "")
        check(len(cid) >= 16, f"generated X-Client-Id {cid!r}")
        st, hdrs, _ = get(gw, f"/channels/{ch}?transport=poll&client={cid}")
        expect_eq(hdrs.get("x-client-id"), cid, "X-Client-Id echoed back")
        st, hdrs, _ = get(gw, f"/channels/{ch}?transport=longpoll&timeout=1&client=lp_1")
        expect_eq((st, hdrs.get("x-client-id")), (200, "lp_1"), "longpoll X-Client-Id")
        s = SSEClient(gw, ch, client="sse-1")
        await s.start()
        expect_eq(s.welcome.get("client"), "sse-1", "sse welcome client")
        expect_eq(s.head.headers.get("x-client-id"), "sse-1", "sse X-Client-Id header")
        w = WSClient(gw, ch, client="ws-1")
        await w.start()
        expect_eq(w.welcome.get("client"), "ws-1", "ws welcome client")
        st, _, body = get(gw, f"/channels/{ch}?transport=poll&client=bad%20id")
        expect_eq(st, 400, "malformed client id")


async def test_event_names():
    "?event=NAME: SSE event: line, event field on poll, longpoll, ws, /ws; /ws publish event too"
    with Gateway() as gw:
        ch = "ev"
        subs = {k: client(k, gw, ch) for k in TRANSPORTS}
        for c in subs.values():
            await c.start()
        m = MuxClient(gw)
        await m.start()
        await m.subscribe(ch)
        publish(gw, ch, {"a": 1}, event="chat.msg")
        publish(gw, ch, "plain")
        await m.publish(ch, {"b": 2}, event="user:typing")
        publish(gw, ch, b"\x01", event="blob-1")
        want = ["chat.msg", "message", "user:typing", "blob-1"]
        for name, c in list(subs.items()) + [("/ws", m)]:
            await c.wait_count(4, 8)
            expect_eq([x["event"] for x in c.messages], want, f"{name}: event fields")
            expect_eq(c.problems, [], f"{name}: problems")
        sse_names = [n for (n, _, _) in subs["sse"].raw_events if n != "welcome"]
        expect_eq(sse_names, want, "SSE event: lines")
        st, body = publish(gw, ch, 1, event="bad event")
        expect_eq(st, 400, "bad event name over HTTP")
        err = await m.op({"op": "publish", "channel": ch, "data": 1, "event": "a" * 65})
        expect_eq(err.get("code"), "bad_event", "/ws too long event name")


async def test_binary_every_transport():
    "application/octet-stream: base64 data with binary:true on poll, longpoll, sse, ws, /ws and multi-channel"
    with Gateway() as gw:
        ch = "bin:x"
        blob = bytes(range(256)) + "é".encode() + b"\r\n\x00"
        subs = {k: client(k, gw, ch) for k in TRANSPORTS}
        subs.update({f"multi-{k}": client(k, gw, f"bin:y,{ch}") for k in TRANSPORTS})
        for c in subs.values():
            await c.start()
        m = MuxClient(gw)
        await m.start()
        await m.subscribe(ch)
        subs["/ws"] = m
        st, _ = publish(gw, ch, blob, client="uploader")
        expect_eq(st, 201, "binary publish")
        st, _ = publish(gw, ch, b"", content_type="application/octet-stream")
        expect_eq(st, 201, "empty binary publish")
        st, _ = publish(gw, ch, "not binary", content_type="text/plain")
        for name, c in subs.items():
            await c.wait_count(3, 8)
            a, b, t = c.messages[:3]
            expect_eq((a.get("binary"), a.get("from"), a.get("channel")), (True, "uploader", ch), f"{name}: flags")
            expect_eq(base64.b64decode(a["data"], validate=True), blob, f"{name}: bytes")
            expect_eq((b.get("binary"), b.get("data")), (True, ""), f"{name}: empty binary")
            expect_eq((t.get("binary"), t.get("data")), (None, "not binary"), f"{name}: text has no binary flag")
            expect_eq(c.problems, [], f"{name}: problems")

async def test_composite_cursor_errors():
    "a composite cursor needs one id per channel: wrong counts are 400 bad_cursor on every transport"
    with Gateway() as gw:
        bad = ["1,2", "1,2,3,4", "1,,2", "1,2,x", "1, 2,3", "-1,0,0"]
        failures = []
        for since in bad:
            for t in ("poll", "longpoll", "sse"):
                st, _, body = get(gw, f"/channels/{LIST}?transport={t}&since={since.replace(' ', '%20')}&timeout=1")
                if st != 400 or b"bad_cursor" not in body:
                    failures.append(f"{t} since={since!r}: {st} {body[:120]!r}")
            st, _, body = get(gw, f"/channels/{LIST}?transport=sse", headers={"Last-Event-ID": since})
            if st != 400 or b"bad_cursor" not in body:
                failures.append(f"sse Last-Event-ID {since!r}: {st} {body[:120]!r}")
        c = SSEClient(gw, LIST, last_event_id="0,0,0")
        await c.start()
        expect_eq(c.welcome.get("cursor"), composite(CHANS, {}, channel_epochs(gw)),
                  "a good Last-Event-ID (plain ids: the epochs attached)")
        check(not failures, "\n".join(failures))


if __name__ == "__main__":
    raise SystemExit(run([
        test_multi_poll, test_multi_longpoll, test_multi_sse, test_multi_ws, test_interleave_backlog_order,
        test_exclude_sender_mixed, test_exclude_sender_from_ws, test_excluded_moves_cursor, test_client_ids, test_composite_cursor_errors, test_event_names,
        test_binary_every_transport,
    ], budget=55, timeout=15))
