#!/usr/bin/env python3
"""Resume: every transport drops its connection abruptly mid-stream while
publishing goes on, comes back with its cursor and loses nothing.  Then the
gap signal: a cursor older than history (and one beyond the last id after a
restart) is told about the gap before it gets the retained messages."""

import asyncio
import random

from gwlib import (Gateway, Publisher, SSEClient, check, expect_eq, ids_problem, make_client,
                   payload, publish, run)

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
            for _ in range(4):
                await c.wait_count(rnd.randint(25, 70), 10)
                c.abort()
                sessions.append((len(c.messages), c.cursor))
                got += c.messages
                check(c.cursor is not None, f"{kind}: no cursor after {len(got)} messages")
                expect_eq(c.cursor, str(got[-1]["id"]), f"{kind}: cursor after the last message")
                await asyncio.sleep(rnd.uniform(0.02, 0.15))   # publishing goes on meanwhile
                c = client_for(kind, gw, ch, c.cursor)
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
            st, _ = publish(gw, ch, {"n": i})
            expect_eq(st, 201, f"publish {i}")
        if kind == "sse":
            clients = [SSEClient(gw, ch, since="5"), SSEClient(gw, ch, last_event_id="5")]
        else:
            clients = [make_client(kind, gw, ch, since="5")]
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
            g = c.gaps[0]
            if kind in ("poll", "longpoll"):
                expect_eq(g.get("gap"), True, f"{kind}: gap flag")
                expect_eq(g.get("gaps"), [{"channel": ch, "last_seen": 5, "cursor": 20}],
                          f"{kind}: gaps name the channel, what was seen and where it resumes")
            else:
                check(isinstance(g, dict) and g.get("channel") == ch, f"{kind}: gap signal {g!r}")
                if kind == "ws":
                    expect_eq(g.get("type"), "gap", "ws gap frame type")
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
            publish(gw, "rs", {"old": i})
        gw.restart()
        for i in range(1, 4):
            st, body = publish(gw, "rs", {"new": i})
            expect_eq((st, body), (201, {"channel": "rs", "id": i}), "ids restart at 1 in memory")
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
