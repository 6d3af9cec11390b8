#!/usr/bin/env python3
"""Resume: every transport drops its connection abruptly mid-stream while
publishing goes on, comes back with its cursor and loses nothing.  Then the
gap signal: a cursor older than history (and one beyond the last id after a
restart) is told about the gap before it gets the retained messages."""

import asyncio
import random

from gwlib import (Gateway, Publisher, SSEClient, check, cursor_id, epochs_problem, expect_eq,
                   ids_problem, make_client, msg_cursor, payload, publish, run)

TOTAL = 400


def client_for(kind, gw, ch, cursor):
    if kind == "sse":
        # the browser way: the same URL (with an old since in the query) plus
        # the Last-Event-ID header, which must win over the query
        if cursor is None:
            return SSEClient(gw, ch)
        return SSEClient(gw, ch, since="0", last_event_id=cursor)
    if kind == "poll":
        return make_client("poll", gw, ch, since=cursor, interval=0.03)
    if kind == "longpoll":
        return make_client("longpoll", gw, ch, since=cursor, timeout=5)
    return make_client("ws", gw, ch, since=cursor)


async def resume_scenario(kind):
    rnd = random.Random(f"resume-{kind}")
    with Gateway() as gw:
        ch = f"resume:{kind}"
        payloads = [payload(i) for i in range(1, TOTAL + 1)]
        got = []
        sessions = []
        c = client_for(kind, gw, ch, None)
        await c.start()
        pub = Publisher(gw)
        pub_task = asyncio.create_task(pub.apublish_many(ch, payloads, interval=0.004))
        try:
            for k in range(4):
                await c.wait_count(rnd.randint(25, 70), 10)
                c.abort()
                sessions.append((len(c.messages), c.cursor))
                got += c.messages
                check(c.cursor is not None, f"{kind}: no cursor after {len(got)} messages")
                expect_eq(c.cursor, msg_cursor(got[-1]), f"{kind}: cursor after the last message")
                await asyncio.sleep(rnd.uniform(0.02, 0.15))   # publishing goes on meanwhile
                # once with the plain id, the cursor of old clients: the same
                # incarnation, so the same resume
                cursor = str(cursor_id(c.cursor)) if k == 2 else c.cursor
                c = client_for(kind, gw, ch, cursor)
                await c.start()
            acks = await asyncio.wait_for(pub_task, 20)
            expect_eq(acks, list(range(1, TOTAL + 1)), "acked ids")
            await c.wait_for(lambda: len(got) + len(c.messages) >= TOTAL, 10, f"the rest of {TOTAL}")
            await asyncio.sleep(0.1)  # anything beyond would be a duplicate
            got += c.messages
        finally:
            pub_task.cancel()
            pub.close()
            c.abort()
        ids = [m["id"] for m in got]
        prob = ids_problem(ids, list(range(1, TOTAL + 1)))
        check(prob is None, f"{kind} after {len(sessions)} reconnects {sessions}: {prob}")
        prob = epochs_problem(got, pub.epochs[ch])
        check(prob is None, f"{kind} over the reconnects: {prob}")
        for m in got:
            if m["data"] != payloads[m["id"] - 1]:
                raise AssertionError(f"{kind}: payload of id {m['id']} differs: {m['data']!r}")
        expect_eq(c.gaps, [], f"{kind}: gaps")


async def test_resume_poll():
    "poll: abrupt disconnects mid-stream, resume with since=next, nothing lost"
    await resume_scenario("poll")


async def test_resume_longpoll():
    "longpoll: abrupt disconnects mid-request, resume with since=next, nothing lost"
    await resume_scenario("longpoll")


async def test_resume_sse():
    "sse: abrupt disconnects, resume with Last-Event-ID (beats since=0 in the query), nothing lost"
    await resume_scenario("sse")


async def test_resume_ws():
    "ws: abrupt disconnects, resume with since=cursor, nothing lost"
    await resume_scenario("ws")


async def gap_scenario(kind):
    with Gateway("--history-size", "10") as gw:
        ch = f"gap:{kind}"
        for i in range(1, 31):
            st, body = publish(gw, ch, {"n": i})
            expect_eq(st, 201, f"publish {i}")
        epoch = body["epoch"]
        # an evicted cursor of this very incarnation: plain or with the epoch
        if kind == "sse":
            clients = [SSEClient(gw, ch, since="5"), SSEClient(gw, ch, last_event_id="5"),
                       SSEClient(gw, ch, since=f"{epoch}:5"), SSEClient(gw, ch, last_event_id=f"{epoch}:5")]
        else:
            clients = [make_client(kind, gw, ch, since="5"), make_client(kind, gw, ch, since=f"{epoch}:5")]
        for c in clients:
            await c.start()
            await c.wait_count(10, 5)
            await asyncio.sleep(0.1)
            c.abort()
            check(c.events and c.events[0][0] == "gap",
                  f"{kind}: first event is {c.events[:1]!r}, want a gap ({c.describe()})")
            expect_eq(len(c.gaps), 1, f"{kind}: number of gap signals")
            expect_eq(c.ids(), list(range(21, 31)), f"{kind}: retained messages after the gap")
            expect_eq([m["data"]["n"] for m in c.messages], list(range(21, 31)), f"{kind}: payloads")
            prob = epochs_problem(c.messages, epoch)
            check(prob is None, f"{kind}: {prob}")
            g = c.gaps[0]
            want = {"channel": ch, "last_seen": 5, "cursor": 20, "epoch": epoch}
            if kind in ("poll", "longpoll"):
                expect_eq(g.get("gap"), True, f"{kind}: gap flag")
                expect_eq(g.get("gaps"), [want],
                          f"{kind}: gaps name the channel, what was seen, where it resumes and its epoch")
            elif kind == "ws":
                expect_eq(g, {"type": "gap", **want}, "ws gap frame")
            else:
                expect_eq(g, want, "sse gap data")
                expect_eq([e[1] for e in c.raw_events if e[0] == "gap"], [f"{epoch}:20"], "sse gap id: line")
            expect_eq(c.problems, [], f"{kind}: problems")


async def test_gap_poll():
    "--history-size 10: poll with an evicted cursor gets gap:true before the retained ones"
    await gap_scenario("poll")


async def test_gap_longpoll():
    "--history-size 10: longpoll with an evicted cursor gets gap:true before the retained ones"
    await gap_scenario("longpoll")


async def test_gap_sse():
    "--history-size 10: sse (since and Last-Event-ID) gets event: gap before the retained ones"
    await gap_scenario("sse")


async def test_gap_ws():
    "--history-size 10: ws gets a gap frame before the retained ones"
    await gap_scenario("ws")


async def test_cursor_beyond_last_after_restart():
    "after a restart a cursor beyond the last id gets a gap, then everything retained (all transports)"
    with Gateway() as gw:
        for i in range(5):
            st, body = publish(gw, "rs", {"old": i})
        old = body["epoch"]
        gw.restart()
        new = None
        for i in range(1, 4):
            st, body = publish(gw, "rs", {"new": i})
            new = new or body.get("epoch")
            expect_eq((st, body), (201, {"channel": "rs", "id": i, "epoch": new}),
                      "ids restart at 1 in memory, in a new epoch")
        check(new != old, f"the epoch after the restart is the old one ({old})")
        failures = []
        for kind in ("poll", "longpoll", "sse", "ws"):
            c = make_client(kind, gw, "rs", since="5") if kind != "sse" else SSEClient(gw, "rs", last_event_id="5")
            try:
                await c.start()
                await c.wait_count(3, 5)
                await asyncio.sleep(0.05)
                c.abort()
                if not (c.events and c.events[0][0] == "gap"):
                    failures.append(f"{kind}: first event {c.events[:1]!r}, want a gap")
                if c.ids() != [1, 2, 3]:
                    failures.append(f"{kind}: ids {c.ids()}, want [1, 2, 3]")
                if c.gaps and (c.gaps[0].get("gaps") or [c.gaps[0]])[0].get("epoch") != new:
                    failures.append(f"{kind}: gap {c.gaps[0]}, want the epoch {new}")
                if epochs_problem(c.messages, new):
                    failures.append(f"{kind}: {epochs_problem(c.messages, new)}")
                if c.problems:
                    failures.append(f"{kind}: problems {c.problems[:3]}")
            except AssertionError as e:
                failures.append(str(e))
            finally:
                c.abort()
        check(not failures, "\n".join(failures))


if __name__ == "__main__":
    raise SystemExit(run([
        test_resume_poll, test_resume_longpoll, test_resume_sse, test_resume_ws,
        test_gap_poll, test_gap_longpoll, test_gap_sse, test_gap_ws,
        test_cursor_beyond_last_after_restart,
    ], timeout=20))
