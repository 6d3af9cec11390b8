#!/usr/bin/env python3
"""Cursor epochs on every transport: ids restart with a new incarnation of
a channel (a restart, a reclaimed channel), and a cursor of another
incarnation gets the gap signal instead of silently skipping messages.

Every scenario runs on poll, longpoll, SSE resumed by since= and by
Last-Event-ID, single-channel WebSocket, the multiplexed /ws, and a
two-channel /channels/A,B composite on poll, longpoll, SSE and WebSocket."""

import asyncio
import json
import time
import urllib.parse

from gwlib import (AsyncHTTP, BodyReader, EPOCH_RE, Gateway, LongPollClient, MuxClient, PollClient,
                   SSEClient, WSClient, check, composite, epochs_problem, expect_eq, expect_error,
                   get, info, metric_sum, metrics, open_stream, parse_cursor, publish, read_head, run)

A, B = "ep:a", "ep:b"
KINDS = ("poll", "longpoll", "sse", "sse-lei", "ws", "mux",
         "multi-poll", "multi-longpoll", "multi-sse", "multi-ws")
MAX_ID = 18446744073709551615
MAX_EPOCH = "3w5e11264sgsf"     # 2**64 - 1 in base 36: the longest epoch


def chans_of(kind):
    return [A, B] if kind.startswith("multi-") else [A]


def has_welcome(kind):
    """Whether the kind names its start cursor (welcome or /ws ack)."""
    return not kind.endswith("poll")


def client(kind, gw, cursor):
    """A subscriber of kind on its channels, resuming at cursor (None: the tail)."""
    chans = chans_of(kind)
    base = kind.removeprefix("multi-")
    lst = ",".join(chans)
    if base == "poll":
        return PollClient(gw, lst, since=cursor, interval=0.03)
    if base == "longpoll":
        return LongPollClient(gw, lst, since=cursor, timeout=5)
    if base == "sse":
        return SSEClient(gw, lst, since=cursor)
    if base == "sse-lei":
        return SSEClient(gw, lst, last_event_id=cursor)
    if base == "ws":
        return WSClient(gw, lst, since=cursor)
    return MuxClient(gw)


async def start(kind, c, cursor):
    """Connect (and subscribe, on /ws); c.start_cursor is the cursor the
    welcome or the subscribe ack names (None for poll and longpoll)."""
    await c.start()
    if kind == "mux":
        c.start_cursor = (await c.subscribe(A, since=cursor)).get("cursor")
    else:
        c.start_cursor = c.welcome.get("cursor") if c.welcome is not None else None
    return c


def publish_n(gw, ch, n, tag):
    """Publish n messages {tag: i}; returns the epoch (one for all n)."""
    epochs = set()
    for i in range(1, n + 1):
        st, body = publish(gw, ch, {tag: i})
        expect_eq(st, 201, f"publish {tag}{i} to {ch}")
        epochs.add(body.get("epoch"))
    check(len(epochs) == 1, f"{ch}: {n} publishes in a row got epochs {epochs}")
    return epochs.pop()


def flat_events(c):
    """('gap', {channel,last_seen,cursor,epoch}) and ('message', m) in arrival
    order; a poll reply's gaps come before its messages."""
    out = []
    for t, o in c.events:
        if t == "gap" and "gaps" in o:
            out += [("gap", g) for g in o["gaps"]]
        elif t == "gap":
            out.append(("gap", {k: v for k, v in o.items() if k != "type"}))
        else:
            out.append((t, o))
    return out


def resume_problems(kind, c, gaps, msgs):
    """gaps: {channel: gap object}; msgs: {channel: [(epoch, id, data)]}.
    Each channel's gap (if any) comes before its first message, exactly once."""
    out = []
    ev = flat_events(c)
    got_gaps = {}
    for i, (t, o) in enumerate(ev):
        if t == "gap":
            if o.get("channel") in got_gaps:
                out.append(f"second gap for {o.get('channel')}: {o}")
            got_gaps[o.get("channel")] = o
            before = [m for (tt, m) in ev[:i] if tt == "message" and m.get("channel") == o.get("channel")]
            if before:
                out.append(f"{len(before)} message(s) of {o.get('channel')} before its gap")
    if got_gaps != gaps:
        out.append(f"gaps {got_gaps}, want {gaps}")
    for ch in chans_of(kind):
        got = [(m.get("epoch"), m.get("id"), m.get("data")) for m in c.messages if m.get("channel") == ch]
        if got != msgs.get(ch, []):
            out.append(f"{ch}: got {got}, want {msgs.get(ch, [])}")
    if c.problems:
        out.append(f"problems {c.problems[:3]}")
    return [f"{kind}: {p}" for p in out]


async def held_cursors(gw, pub_a, pub_b):
    """Every kind subscribes at the tail, gets pub_a messages on A and pub_b
    on B (multi kinds), and drops: the cursor each one holds afterwards."""
    clients = {k: client(k, gw, None) for k in KINDS}
    for k, c in clients.items():
        await start(k, c, None)
    publish_n(gw, A, pub_a, "old")
    publish_n(gw, B, pub_b, "old")
    held = {}
    for k, c in clients.items():
        n = pub_a + (pub_b if k.startswith("multi-") else 0)
        await c.wait_count(n, 5)
        c.abort()
        held[k] = c.cursors[A] if k == "mux" else c.cursor
        expect_eq(c.problems, [], f"{k} before: problems")
    return held


async def resume_all(gw, runs):
    """runs: [(kind, cursor, messages to wait for)]. Start them all at once
    (history may be about to age out) and wait; returns their clients."""
    clients = [client(k, gw, cur) for k, cur, _ in runs]
    await asyncio.gather(*(start(k, c, cur) for (k, cur, _), c in zip(runs, clients)))
    for (k, _, n), c in zip(runs, clients):
        await c.wait_count(n, 5)
    await asyncio.sleep(0.15)   # anything more would be a duplicate
    for c in clients:
        c.abort()
    return clients


async def new_incarnation_scenario(gw, held, old, renew):
    """renew() makes new incarnations of A and B; then 5 on A, 2 on B.
    Resuming with the held epoch cursors: a gap, then all of them. With a
    plain since=3 (3,2): only new4, new5, as the protocol documents."""
    await renew()
    new = {A: publish_n(gw, A, 5, "new"), B: publish_n(gw, B, 2, "new")}
    check(new[A] != old[A] and new[B] != old[B], f"new epochs {new} equal the old ones {old}")
    # the documented compatibility path too: a plain id is taken to be of
    # the current incarnation, so it skips what that one published up to it
    plain = {k: "3,2" if k.startswith("multi-") else "3" for k in KINDS}
    runs = [(k, held[k], 7 if k.startswith("multi-") else 5) for k in KINDS] + [(k, plain[k], 2) for k in KINDS]
    clients = await resume_all(gw, runs)
    failures = []
    for k, c in zip(KINDS, clients):
        gaps = {A: {"channel": A, "last_seen": 3, "cursor": 0, "epoch": new[A]}}
        msgs = {A: [(new[A], i, {"new": i}) for i in range(1, 6)]}
        if k.startswith("multi-"):
            gaps[B] = {"channel": B, "last_seen": 2, "cursor": 0, "epoch": new[B]}
            msgs[B] = [(new[B], i, {"new": i}) for i in range(1, 3)]
        failures += resume_problems(k, c, gaps, msgs)
        if has_welcome(k) and c.start_cursor != held[k]:
            failures.append(f"{k}: welcome/ack cursor {c.start_cursor!r}, want the stale one echoed {held[k]!r}")
        final = c.cursors.get(A) if k == "mux" else c.cursor
        want = composite(chans_of(k), {A: 5, B: 2}, new)
        if final != want:
            failures.append(f"{k}: cursor at the end {final!r}, want {want!r}")
    for k, c in zip(KINDS, clients[len(KINDS):]):
        failures += [f"plain {p}" for p in resume_problems(k, c, {}, {A: [(new[A], i, {"new": i}) for i in (4, 5)]})]
        want = composite(chans_of(k), {A: 3, B: 2}, new)
        if has_welcome(k) and c.start_cursor != want:
            failures.append(f"plain {k}: welcome/ack cursor {c.start_cursor!r}, want {want!r}")
    check(not failures, "\n".join(failures))


async def test_restart():
    "the issue: publish 3, restart, publish 5; the held epoch cursor gets a gap then new1..new5; plain since=3 gets new4,new5"
    with Gateway() as gw:
        held = await held_cursors(gw, 3, 2)
        old = {A: info(gw, A)["epoch"], B: info(gw, B)["epoch"]}
        for k, cur in held.items():
            want = old[A] + ":3" + (f",{old[B]}:2" if k.startswith("multi-") else "")
            expect_eq(cur, want, f"{k}: the cursor held before the restart")
        port = gw.port

        async def renew():
            gw.restart()
            expect_eq(gw.port, port, "same port after the restart")
            expect_eq({k: v for k, v in info(gw, A).items() if k != "subscribers"},
                      {"channel": A, "epoch": None, "last_id": 0, "oldest_id": 1, "retained": 0},
                      "info after the restart")

        await new_incarnation_scenario(gw, held, old, renew)


async def wait_reclaimed(gw, what):
    """Until no live channel is left (the gauge counts no tombs)."""
    t0 = time.monotonic()
    while metric_sum(metrics(gw), "anypush_channels") != 0:
        check(time.monotonic() - t0 < 10, f"{what}: not reclaimed within 10 s")
        await asyncio.sleep(0.1)


async def test_reclaimed_keeps_epoch():
    "--history-age 1: publish 3, the idle channel is reclaimed, publish 5: its tomb keeps the epoch, ids go on, no gap"
    with Gateway("--history-age", "1", "--presence-window", "1") as gw:
        held = await held_cursors(gw, 3, 2)
        old = {A: info(gw, A)["epoch"], B: info(gw, B)["epoch"]}
        await wait_reclaimed(gw, "A and B")
        # a reclaimed channel still names its epoch and last id: the
        # cursor of "now" stays exact
        expect_eq(info(gw, A), {"channel": A, "epoch": old[A], "last_id": 3, "oldest_id": 4, "retained": 0,
                                "subscribers": {"poll": 0, "longpoll": 0, "sse": 0, "ws": 0}},
                  "info of the reclaimed channel")
        new = {A: publish_n(gw, A, 5, "new"), B: publish_n(gw, B, 2, "new")}
        expect_eq(new, old, "epochs after the channels came back")
        plain = {k: "3,2" if k.startswith("multi-") else "3" for k in KINDS}
        runs = [(k, held[k], 7 if k.startswith("multi-") else 5) for k in KINDS] + \
               [(k, plain[k], 7 if k.startswith("multi-") else 5) for k in KINDS]
        clients = await resume_all(gw, runs)
        failures = []
        for i, (k, c) in enumerate(zip(KINDS + KINDS, clients)):
            msgs = {A: [(old[A], 3 + n, {"new": n}) for n in range(1, 6)]}
            if k.startswith("multi-"):
                msgs[B] = [(old[B], 2 + n, {"new": n}) for n in range(1, 3)]
            failures += [f"{'plain ' if i >= len(KINDS) else ''}{p}" for p in resume_problems(k, c, {}, msgs)]
            final = c.cursors.get(A) if k == "mux" else c.cursor
            want = composite(chans_of(k), {A: 8, B: 4}, old)
            if final != want:
                failures.append(f"{k}: cursor at the end {final!r}, want {want!r}")
        check(not failures, "\n".join(failures))


async def test_reclaimed_tomb_forgotten():
    "--max-channels 2: the tombs of reclaimed A and B are pushed out by others; publish 5: old epoch cursor gets a gap then 5"
    with Gateway("--history-age", "1", "--presence-window", "1", "--max-channels", "2") as gw:
        held = await held_cursors(gw, 3, 2)
        old = {A: info(gw, A)["epoch"], B: info(gw, B)["epoch"]}

        async def renew():
            await wait_reclaimed(gw, "A and B")
            publish_n(gw, "epoch-c", 1, "x")
            publish_n(gw, "epoch-d", 1, "x")
            await wait_reclaimed(gw, "C and D")
            # two tombs at most: A's and B's are gone, so nothing is known
            expect_eq(info(gw, A), {"channel": A, "epoch": None, "last_id": 0, "oldest_id": 1, "retained": 0,
                                    "subscribers": {"poll": 0, "longpoll": 0, "sse": 0, "ws": 0}},
                      "info of a channel whose tomb is gone")

        # the new messages age out after 1 s too: every kind resumes at once
        await new_incarnation_scenario(gw, held, old, renew)


async def test_quiet_poll_no_false_gap():
    "a poller without a client id on a quiet channel: the channel is reclaimed between polls, and no poll reads a gap"
    with Gateway("--history-age", "1") as gw:
        st, _, body = get(gw, "/channels/quiet?transport=poll")
        expect_eq(st, 200, "first poll")
        first = json.loads(body)
        epoch = first["next"].split(":")[0]
        expect_eq(first["next"], f"{epoch}:0", "tail cursor of an empty channel")
        cur = first["next"]
        for round_ in range(2):
            await wait_reclaimed(gw, "quiet")
            st, _, body = get(gw, f"/channels/quiet?transport=poll&since={cur}")
            j = json.loads(body)
            expect_eq((st, j), (200, {"messages": [], "next": cur}), f"poll {round_ + 2} after a reclaim")
        publish(gw, "quiet", {"n": 1})
        st, _, body = get(gw, f"/channels/quiet?transport=poll&since={cur}")
        j = json.loads(body)
        expect_eq([(m["epoch"], m["id"]) for m in j["messages"]], [(epoch, 1)], "the message after the reclaims")
        check("gap" not in j, f"a gap where none was: {j}")


async def test_unknown_epoch():
    "a well-formed cursor of an unknown epoch: a gap, then everything retained (--history-size 4)"
    with Gateway("--history-size", "4") as gw:
        ea, eb = publish_n(gw, A, 6, "n"), publish_n(gw, B, 3, "n")
        ua, ub = "zzzzzzzz", MAX_EPOCH
        check(ua != ea and ub != eb, "the unknown epochs are the channels' own")
        cursors = {k: f"{ua}:3,{ub}:1" if k.startswith("multi-") else f"{ua}:3" for k in KINDS}
        clients = await resume_all(gw, [(k, cursors[k], 7 if k.startswith("multi-") else 4) for k in KINDS])
        failures = []
        for k, c in zip(KINDS, clients):
            gaps = {A: {"channel": A, "last_seen": 3, "cursor": 2, "epoch": ea}}
            msgs = {A: [(ea, i, {"n": i}) for i in range(3, 7)]}
            if k.startswith("multi-"):
                gaps[B] = {"channel": B, "last_seen": 1, "cursor": 0, "epoch": eb}
                msgs[B] = [(eb, i, {"n": i}) for i in range(1, 4)]
            failures += resume_problems(k, c, gaps, msgs)
            if has_welcome(k) and c.start_cursor != cursors[k]:
                failures.append(f"{k}: welcome/ack cursor {c.start_cursor!r}, want {cursors[k]!r} echoed")
        check(not failures, "\n".join(failures))


BAD_ONE = [":5", "k3x9a2bq:", "K3X9A2BQ:5", "0:5", "00000000:5", "3w5e11264sgsg:5", "12345678901234:5",
           "a:b:5", "k3x9a2bq::5", "k3x9a2bq:-1", "k3x9a2bq:18446744073709551616", "k3x9a2bq: 5",
           "k3x9-2bq:5", "k3x9a2bq:0x5", "k3x9a2bq:5,1", "k3x9a2bq:5,", "é:5"]
BAD_TWO = ["k3x9a2bq:5", "k3x9a2bq:5,:3", "k3x9a2bq:5,k3x9a2bq:", "k3x9a2bq:5,k3x9a2bq:1,2", ",k3x9a2bq:1"]


async def ws_refusal(gw, path):
    """A WebSocket upgrade that must be refused: (status, headers, body)."""
    w = WSClient(gw, path=path)
    try:
        await w.connect()
    except AssertionError:
        return (w.status, w.head.headers if w.head else {}, getattr(w, "error_body", b""))
    w.abort()
    return (101, {}, b"upgraded")


async def test_malformed():
    "malformed epoch cursors: 400 bad_cursor on HTTP, a refused WS upgrade with a JSON 400, a bad_cursor frame on /ws"
    with Gateway() as gw:
        publish(gw, A, 1)
        publish(gw, B, 1)
        m = MuxClient(gw)
        await m.start()
        failures = []
        cases = [(A, v) for v in BAD_ONE] + [(f"{A},{B}", v) for v in BAD_TWO]
        for lst, bad in cases:
            for form, q in (("raw", urllib.parse.quote(bad, safe=":,")), ("encoded", urllib.parse.quote(bad, safe=""))):
                what = f"{lst} since={bad!r} ({form})"
                for t in ("poll", "longpoll", "sse"):
                    try:
                        expect_error(get(gw, f"/channels/{lst}?transport={t}&timeout=1&since={q}"),
                                     400, "bad_cursor", what=f"{t} {what}")
                    except AssertionError as e:
                        failures.append(str(e))
                try:
                    expect_error(await ws_refusal(gw, f"/channels/{lst}?since={q}"), 400, "bad_cursor",
                                 what=f"ws {what}")
                except AssertionError as e:
                    failures.append(str(e))
            if not bad.isascii():
                continue   # not a header value
            try:
                expect_error(get(gw, f"/channels/{lst}?transport=sse", headers={"Last-Event-ID": bad}),
                             400, "bad_cursor", what=f"sse Last-Event-ID {bad!r} on {lst}")
            except AssertionError as e:
                failures.append(str(e))
            if lst == A:
                f = await m.op({"op": "subscribe", "channel": A, "since": bad})
                if (f.get("type"), f.get("code")) != ("error", "bad_cursor"):
                    failures.append(f"/ws subscribe since={bad!r}: {f}")
        # the message says what a cursor is, as the /ws one does
        st, _, body = get(gw, f"/channels/{A}?transport=poll&since=abc:")
        msg = json.loads(body)["error"]["message"]
        check("EPOCH:" in msg, f"bad_cursor message {msg!r} does not name the EPOCH:ID form")
        # the connection stays usable and nothing was subscribed by the bad ones
        ack = await m.subscribe(A, since="0")
        expect_eq(ack.get("cursor"), f"{info(gw, A)['epoch']}:0", "/ws subscribe after the errors")
        await m.wait_count(1, 5)
        check(not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:12]))
        expect_eq(m.problems, [], "/ws problems")


async def test_consistency():
    "one message has one epoch on every transport; next, SSE id:, WS welcome, /ws ack, publish 201 and /info agree"
    with Gateway() as gw:
        clients = {k: client(k, gw, None) for k in KINDS}
        for k, c in clients.items():
            await start(k, c, None)
        ea, eb = info(gw, A)["epoch"], info(gw, B)["epoch"]
        check(ea and eb, f"subscribing made no incarnation: {ea!r} {eb!r}")
        failures = []
        for k, c in clients.items():
            want = composite(chans_of(k), {}, {A: ea, B: eb})
            if k in ("sse", "sse-lei", "multi-sse"):
                if not (c.raw_events and c.raw_events[0][0] == "welcome" and c.raw_events[0][1] == want):
                    failures.append(f"{k}: welcome id: {c.raw_events[:1]}, want {want!r}")
            if has_welcome(k) and c.start_cursor != want:
                failures.append(f"{k}: welcome/ack cursor {c.start_cursor!r}, want {want!r}")
            if k.endswith("poll") and c.cursor != want:
                failures.append(f"{k}: first next {c.cursor!r}, want {want!r}")
        st, body = publish(gw, A, {"via": "http"})
        expect_eq((st, body), (201, {"channel": A, "id": 1, "epoch": ea}), "publish 201")
        ack = await clients["mux"].publish(A, {"via": "/ws"})
        expect_eq((ack.get("id"), ack.get("epoch")), (2, ea), "/ws publish ack")
        await clients["ws"].send_json({"via": "ws frame"})
        st, body = publish(gw, B, {"via": "http"})
        expect_eq((st, body), (201, {"channel": B, "id": 1, "epoch": eb}), "publish 201 on B")
        seen = {}
        for k, c in clients.items():
            await c.wait_count(4 if k.startswith("multi-") else 3, 5)
        await asyncio.sleep(0.1)
        for k, c in clients.items():
            for m in c.messages:
                key = (m["channel"], m["id"])
                same = {x: m.get(x) for x in ("epoch", "ts", "data", "event", "from")}
                if seen.setdefault(key, (k, same))[1] != same:
                    failures.append(f"{key} on {k}: {same}, on {seen[key][0]}: {seen[key][1]}")
            prob = epochs_problem(c.messages, {A: ea, B: eb})
            if prob:
                failures.append(f"{k}: {prob}")
            want = composite(chans_of(k), {A: 3, B: 1}, {A: ea, B: eb})
            if k == "mux":
                want = f"{ea}:3"
            final = c.cursors.get(A) if k == "mux" else c.cursor
            if final != want:
                failures.append(f"{k}: cursor at the end {final!r}, want {want!r}")
            if k in ("sse", "sse-lei", "multi-sse"):
                last = [e for e in c.raw_events if e[0] == "message"][-1]
                if last[1] != want:
                    failures.append(f"{k}: last id: line {last[1]!r}, want {want!r}")
            if c.problems:
                failures.append(f"{k}: problems {c.problems[:3]}")
        expect_eq(sorted(seen), [(A, 1), (A, 2), (A, 3), (B, 1)], "messages seen")
        ia = info(gw, A)
        expect_eq((ia["epoch"], ia["last_id"]), (ea, 3), "/info of A")
        check(not failures, "\n".join(failures))


async def http_sub(gw, path, timeout=5.0):
    """GET path on a fresh connection (poll/longpoll): (status, JSON or body)."""
    h = AsyncHTTP(gw)
    try:
        r = await h.request("GET", path, timeout=timeout)
    finally:
        h.close()
    try:
        return r.status, r.json()
    except ValueError:
        return r.status, r.body


async def test_percent_encoded():
    "percent-encoded cursors (%3A, %3a, %2C) work alike on poll, longpoll, sse and ws; double encoding is 400 everywhere"
    with Gateway() as gw:
        ea, eb = publish_n(gw, A, 5, "n"), publish_n(gw, B, 2, "n")
        lst = f"{A},{B}"
        good = [(A, f"{ea}:3"), (A, f"{ea}%3A3"), (A, f"{ea}%3a3"), (lst, f"{ea}%3A3%2C{eb}%3A1"),
                (lst, f"{ea}:3%2C1"), (lst, f"{ea}:3%2c{eb}:1"), (lst, f"{ea}:3,{eb}%3A1")]
        failures = []
        for chs, q in good:
            decoded = urllib.parse.unquote(q)
            want_cursor = composite(chs.split(","), dict(zip(chs.split(","), (i for _, i in parse_cursor(decoded)))),
                                    {A: ea, B: eb})
            want_ids = [(A, 4), (A, 5)] + ([(B, 2)] if chs == lst else [])
            want_next = composite(chs.split(","), {A: 5, B: 2}, {A: ea, B: eb})
            for t in ("poll", "longpoll"):
                st, j = await http_sub(gw, f"/channels/{chs}?transport={t}&timeout=1&since={q}")
                got = (st, sorted((m["channel"], m["id"]) for m in j["messages"]) if st == 200 else j,
                       j.get("next") if st == 200 else None)
                if got != (200, want_ids, want_next):
                    failures.append(f"{t} since={q}: {got}, want {(200, want_ids, want_next)}")
            for t, cls in (("sse", SSEClient), ("ws", WSClient)):
                c = cls(gw, chs, path=f"/channels/{chs}?transport={t}&since={q}")
                try:
                    await c.start()
                    await c.wait_count(len(want_ids), 5)
                    await asyncio.sleep(0.05)
                    got = (c.welcome.get("cursor"), sorted((m["channel"], m["id"]) for m in c.messages),
                           c.cursor, c.problems)
                    if got != (want_cursor, want_ids, want_next, []):
                        failures.append(f"{t} since={q}: {got}, want {(want_cursor, want_ids, want_next, [])}")
                except AssertionError as e:
                    failures.append(f"{t} since={q}: {e}")
                finally:
                    c.abort()
        # encoded once more is a cursor with '%' in it on every transport
        for chs, q in ((A, f"{ea}%253A3"), (lst, f"{ea}:3%252C1")):
            for t in ("poll", "longpoll", "sse"):
                try:
                    expect_error(get(gw, f"/channels/{chs}?transport={t}&timeout=1&since={q}"), 400, "bad_cursor",
                                 what=f"{t} since={q}")
                except AssertionError as e:
                    failures.append(str(e))
            try:
                expect_error(await ws_refusal(gw, f"/channels/{chs}?since={q}"), 400, "bad_cursor",
                             what=f"ws since={q}")
            except AssertionError as e:
                failures.append(str(e))
        # a header and a JSON string are not URLs: taken as they are
        try:
            expect_error(get(gw, f"/channels/{A}?transport=sse", headers={"Last-Event-ID": f"{ea}%3A3"}),
                         400, "bad_cursor", what="Last-Event-ID with %3A")
        except AssertionError as e:
            failures.append(str(e))
        m = MuxClient(gw)
        await m.start()
        f = await m.op({"op": "subscribe", "channel": A, "since": f"{ea}%3A3"})
        if (f.get("type"), f.get("code")) != ("error", "bad_cursor"):
            failures.append(f"/ws subscribe since with %3A: {f}")
        check(not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:12]))


async def sse_head_bytes(gw, path, headers=None, want=8192):
    """The first `want` bytes of an SSE response body (dechunked) and the head."""
    reader, writer = await open_stream(gw.port)
    try:
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{hdrs}\r\n".encode())
        await writer.drain()
        head = await read_head(reader)
        body = BodyReader(reader, head)
        data = b""
        t0 = time.monotonic()
        while len(data) < want and time.monotonic() - t0 < 5:
            piece = await asyncio.wait_for(body.read(), 5)
            if not piece:
                break
            data += piece
        return head, data[:want]
    finally:
        writer.transport.abort()


def sse_blocks(data):
    """Complete SSE blocks of data: [{field: value}] (last value wins)."""
    out = []
    for block in data.decode("ascii").split("\n\n")[:-1]:
        ev = {}
        for line in block.split("\n"):
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v
        out.append(ev)
    return out


async def test_longest_cursors():
    "32 channels with 32 of the longest cursors: the SSE welcome (id: = data.cursor = what was sent), poll and longpoll gaps and next, the WS welcome"
    with Gateway() as gw:
        chans = [f"L{i}" for i in range(32)]
        lst = ",".join(chans)
        for ch in chans:   # kept in history: the epochs stay for the whole test
            publish(gw, ch, {"n": 1})
        epochs = {ch: info(gw, ch)["epoch"] for ch in chans}
        longest = ",".join([f"{MAX_EPOCH}:{MAX_ID}"] * 32)
        plain = ",".join([str(MAX_ID)] * 32)
        expect_eq(len(longest), 32 * 34 + 31, "the longest composite cursor")
        failures = []
        for form, sent in (("epoch", longest), ("plain", plain)):
            for how in ("since", "Last-Event-ID"):
                path = f"/channels/{lst}?transport=sse" + (f"&since={sent}" if how == "since" else "")
                head, data = await sse_head_bytes(gw, path, {"Last-Event-ID": sent} if how != "since" else None)
                tag = f"sse {form} {how}"
                if head.status != 200:
                    failures.append(f"{tag}: status {head.status}")
                    continue
                bad = sorted({b for b in data if not (32 <= b < 127 or b == 10)})
                if bad or len(data) < 8192:
                    failures.append(f"{tag}: {len(data)} bytes, bytes outside printable ASCII + LF: {bad[:10]}")
                    continue
                blocks = sse_blocks(data)
                w = [b for b in blocks if b.get("event") == "welcome"]
                want = sent if form == "epoch" else composite(chans, {ch: MAX_ID for ch in chans}, epochs)
                if not w or w[0].get("id") != want or json.loads(w[0]["data"]).get("cursor") != want:
                    failures.append(f"{tag}: welcome {str(w[:1])[:300]}, want id and cursor {want[:60]}...")
                gaps = [json.loads(b["data"]) for b in blocks if b.get("event") == "gap"]
                if not gaps or any(g.get("last_seen") != MAX_ID or g.get("epoch") != epochs[g.get("channel")]
                                   for g in gaps):
                    failures.append(f"{tag}: gap events {gaps[:2]}")
            for t in ("poll", "longpoll"):
                st, j = await http_sub(gw, f"/channels/{lst}?transport={t}&timeout=1&since={sent}")
                if st != 200:
                    failures.append(f"{t} {form}: status {st}: {str(j)[:200]}")
                    continue
                want_gaps = [{"channel": ch, "last_seen": MAX_ID, "cursor": 0, "epoch": epochs[ch]} for ch in chans]
                want_next = composite(chans, {ch: 1 for ch in chans}, epochs)
                got = (sorted(j.get("gaps", []), key=lambda g: chans.index(g["channel"])), j.get("next"),
                       sorted(((m["channel"], m["id"]) for m in j["messages"]), key=lambda x: chans.index(x[0])))
                if got != (want_gaps, want_next, [(ch, 1) for ch in chans]):
                    failures.append(f"{t} {form}: {str(got)[:400]}")
            w = WSClient(gw, lst, since=sent)
            try:
                await w.start()
                await w.wait_for(lambda: len(w.gaps) >= 32 and len(w.messages) >= 32, 5, "32 gaps and 32 messages")
                want = sent if form == "epoch" else composite(chans, {ch: MAX_ID for ch in chans}, epochs)
                if w.welcome.get("cursor") != want or w.problems:
                    failures.append(f"ws {form}: welcome cursor {w.welcome.get('cursor')[:80]!r}..., "
                                    f"problems {w.problems[:2]}")
            except AssertionError as e:
                failures.append(f"ws {form}: {e}")
            finally:
                w.abort()
        m = MuxClient(gw)
        await m.start()
        ack = await m.subscribe(chans[0], since=f"{MAX_EPOCH}:{MAX_ID}")
        expect_eq(ack.get("cursor"), f"{MAX_EPOCH}:{MAX_ID}", "/ws ack of the longest cursor")
        await m.wait_count(1, 5)
        expect_eq([(g["last_seen"], g["cursor"]) for g in m.gaps], [(MAX_ID, 0)], "/ws gap")
        check(not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:12]))


if __name__ == "__main__":
    raise SystemExit(run([
        test_restart, test_reclaimed_keeps_epoch, test_reclaimed_tomb_forgotten, test_quiet_poll_no_false_gap,
        test_unknown_epoch,
        test_malformed, test_consistency,
        test_percent_encoded, test_longest_cursors,
    ], budget=55, timeout=20))
