#!/usr/bin/env python3
"""Presence: subscriber counts per transport in /channels/{ch}/info (sse and
ws connections; pollers within --presence-window), and the join/leave
messages announced for ?presence=1 subscribers on every transport,
including /ws and pollers whose window runs out."""

import asyncio
import json
import time

from gwlib import (Gateway, LongPollClient, MuxClient, PollClient, SSEClient, WSClient, check,
                   expect_eq, get, info, publish, run, wait_until)

WINDOW = 2   # --presence-window for these tests, seconds


def subs(gw, ch):
    return info(gw, ch)["subscribers"]


def presence_events(c):
    """(event, data) of the join/leave messages a subscriber got."""
    return [(m["event"], m["data"]) for m in c.messages if m.get("event") in ("join", "leave")]


def history(gw, ch):
    st, _, body = get(gw, f"/channels/{ch}?transport=poll&since=0")
    check(st == 200, f"poll since=0: {st} {body[:200]!r}")
    return json.loads(body)["messages"]


async def watch(gw, ch):
    w = SSEClient(gw, ch)
    await w.start()
    return w


async def wait_presence(w, want, timeout, what):
    await w.wait_for(lambda: presence_events(w) == want or len(presence_events(w)) > len(want),
                     timeout, what)
    expect_eq(presence_events(w), want, what)


async def test_info_counts():
    "info counts: sse and ws connections (/ws per subscribed channel), distinct pollers within the window"
    with Gateway("--presence-window", WINDOW) as gw:
        z = subs(gw, "p")
        expect_eq(z, {"poll": 0, "longpoll": 0, "sse": 0, "ws": 0}, "an empty channel")
        sse = [SSEClient(gw, "p"), SSEClient(gw, "p,q")]
        ws = [WSClient(gw, "p"), WSClient(gw, "q,p")]
        for c in sse + ws:
            await c.start()
        mux = MuxClient(gw)
        await mux.start()
        await mux.subscribe("p")
        await mux.subscribe("q")
        mux2 = MuxClient(gw)
        await mux2.start()
        await mux2.subscribe("q")
        expect_eq(subs(gw, "p"), {"poll": 0, "longpoll": 0, "sse": 2, "ws": 3}, "p with sse and ws")
        expect_eq(subs(gw, "q"), {"poll": 0, "longpoll": 0, "sse": 1, "ws": 3}, "q with sse and ws")
        # pollers: two client ids, one of them with two pollers; a waiting long poll
        polls = [PollClient(gw, "p", client="pA", interval=0.2), PollClient(gw, "p", client="pB", interval=0.2),
                 PollClient(gw, "p", client="pA", interval=0.2)]
        lp = LongPollClient(gw, "p", since="0", client="lA", timeout=8)
        for c in polls:
            await c.start()
        lp._task = asyncio.create_task(lp._guarded())   # held at once: nothing to wait for
        await wait_until(lambda: lp.in_flight, 3, what="the long poll waiting")
        await asyncio.sleep(0.1)
        expect_eq(subs(gw, "p"), {"poll": 2, "longpoll": 1, "sse": 2, "ws": 3}, "p with pollers")
        expect_eq(subs(gw, "q")["poll"], 0, "pollers of p do not count on q")
        # connections going away
        await mux.unsubscribe("p")
        sse[0].abort()
        await wait_until(lambda: subs(gw, "p")["sse"] == 1, 3, what="sse count 1 after a close")
        expect_eq(subs(gw, "p")["ws"], 2, "ws after a /ws unsubscribe")
        ws[1].abort()
        await mux2.close()
        await wait_until(lambda: subs(gw, "q")["ws"] == 1, 3, what="ws count on q after two closes")
        # pollers stop: still counted within the window, gone after it
        t_stop = time.monotonic()
        for c in polls + [lp]:
            c.abort()
        await asyncio.sleep(0.5)
        s = subs(gw, "p")
        expect_eq((s["poll"], s["longpoll"]), (2, 1), "pollers within the window after their last poll")
        await wait_until(lambda: subs(gw, "p")["poll"] == 0 and subs(gw, "p")["longpoll"] == 0,
                         WINDOW + 3, what="pollers to expire")
        check(time.monotonic() - t_stop >= WINDOW - 0.6,
              f"pollers expired after {time.monotonic() - t_stop:.1f} s, window {WINDOW} s")
        # a single poll counts at once
        get(gw, "/channels/p?transport=poll&client=once")
        expect_eq(subs(gw, "p")["poll"], 1, "a single poll")


async def test_join_leave_sse():
    "?presence=1 on sse: join {client, transport:sse} when it arrives, leave when it goes; in history"
    with Gateway("--presence-window", WINDOW) as gw:
        ch = "pr:sse"
        w = await watch(gw, ch)
        quiet = SSEClient(gw, ch, client="quiet")
        await quiet.start()
        a = SSEClient(gw, ch, client="alice", extra_query=[("presence", "1")])
        await a.start()
        await wait_presence(w, [("join", {"client": "alice", "transport": "sse"})], 5, "join of alice")
        a.abort()
        await wait_presence(w, [("join", {"client": "alice", "transport": "sse"}),
                                ("leave", {"client": "alice", "transport": "sse"})], 5, "leave of alice")
        quiet.abort()
        publish(gw, ch, {"after": True})
        await w.wait_count(3, 5)
        await asyncio.sleep(0.2)
        expect_eq([m["event"] for m in w.messages], ["join", "leave", "message"],
                  "no presence events for a subscriber without ?presence=1")
        hist = history(gw, ch)
        expect_eq([(m["id"], m["event"]) for m in hist], [(1, "join"), (2, "leave"), (3, "message")],
                  "join and leave are in history with ids")
        # they resume like any message: Last-Event-ID 1 gets the leave and the rest
        r = SSEClient(gw, ch, last_event_id="1")
        await r.start()
        await r.wait_count(2, 5)
        expect_eq([(m["id"], m["event"]) for m in r.messages], [(2, "leave"), (3, "message")], "resume after join")
        expect_eq(w.problems, [], "watcher problems")


async def test_join_leave_ws():
    "?presence=1 on ws (single and multi-channel) and sse on several channels: join/leave on each channel"
    with Gateway("--presence-window", WINDOW) as gw:
        wa, wb = await watch(gw, "pr:a"), await watch(gw, "pr:b")
        s = WSClient(gw, "pr:a", client="w1", extra_query=[("presence", "1")])
        await s.start()
        await wait_presence(wa, [("join", {"client": "w1", "transport": "ws"})], 5, "join of w1 on pr:a")
        mw = WSClient(gw, "pr:a,pr:b", client="w2", extra_query=[("presence", "1")])
        await mw.start()
        ms = SSEClient(gw, "pr:b,pr:a", client="s3", extra_query=[("presence", "1")])
        await ms.start()
        ja = [("join", {"client": "w1", "transport": "ws"}), ("join", {"client": "w2", "transport": "ws"}),
              ("join", {"client": "s3", "transport": "sse"})]
        jb = [("join", {"client": "w2", "transport": "ws"}), ("join", {"client": "s3", "transport": "sse"})]
        await wait_presence(wa, ja, 5, "joins on pr:a")
        await wait_presence(wb, jb, 5, "joins on pr:b")
        await s.close()
        await wait_presence(wa, ja + [("leave", {"client": "w1", "transport": "ws"})], 5, "leave of w1 (close frame)")
        mw.abort()
        ms.abort()
        la = [("leave", {"client": "s3", "transport": "sse"}), ("leave", {"client": "w2", "transport": "ws"})]
        await wa.wait_for(lambda: len(presence_events(wa)) >= 6, 5, "two more leaves on pr:a")
        await wb.wait_for(lambda: len(presence_events(wb)) >= 4, 5, "two leaves on pr:b")
        await asyncio.sleep(0.2)
        key = lambda e: e[1]["client"]
        expect_eq(sorted(presence_events(wa)[4:], key=key), la, "leaves on pr:a (aborted connections)")
        expect_eq(sorted(presence_events(wb)[2:], key=key), la, "leaves on pr:b")


async def test_join_leave_mux():
    "/ws subscribe with presence:true: join on that channel, leave when the connection closes"
    with Gateway("--presence-window", WINDOW) as gw:
        w = await watch(gw, "pr:m")
        w2 = await watch(gw, "pr:n")
        m = MuxClient(gw, client="mx")
        await m.start()
        await m.subscribe("pr:m", presence=True)
        await m.subscribe("pr:n")                       # without presence: silent
        await wait_presence(w, [("join", {"client": "mx", "transport": "ws"})], 5, "join of mx")
        await m.wait_for(lambda: any(x.get("event") == "join" for x in m.messages), 5,
                         "its own join (an ordinary message on the channel)")
        m.abort()
        await wait_presence(w, [("join", {"client": "mx", "transport": "ws"}),
                                ("leave", {"client": "mx", "transport": "ws"})], 5, "leave of mx")
        publish(gw, "pr:n", "marker")
        await w2.wait_count(1, 5)
        await asyncio.sleep(0.2)
        expect_eq([x["event"] for x in w2.messages], ["message"], "pr:n (subscribed without presence)")


async def test_leave_on_unsubscribe():
    "/ws unsubscribe of a presence subscription publishes its leave at once"
    with Gateway("--presence-window", WINDOW) as gw:
        w = await watch(gw, "pr:u")
        m = MuxClient(gw, client="ux")
        await m.start()
        await m.subscribe("pr:u", presence=True)
        await wait_presence(w, [("join", {"client": "ux", "transport": "ws"})], 5, "join of ux")
        await m.unsubscribe("pr:u")
        await wait_presence(w, [("join", {"client": "ux", "transport": "ws"}),
                                ("leave", {"client": "ux", "transport": "ws"})], 3, "leave after unsubscribe")
        await m.close()
        await asyncio.sleep(0.3)
        expect_eq(len(presence_events(w)), 2, "no second leave at close")


async def test_join_leave_pollers():
    "?presence=1 on poll and longpoll: join at the first poll, one only; leave when the window runs out"
    with Gateway("--presence-window", WINDOW) as gw:
        ch = "pr:poll"
        w = await watch(gw, ch)
        p = PollClient(gw, ch, client="pp", interval=0.2, extra_query=[("presence", "1")])
        lp = LongPollClient(gw, ch, since="0", client="ll", timeout=1, extra_query=[("presence", "1")])
        await p.start()
        await wait_presence(w, [("join", {"client": "pp", "transport": "poll"})], 5, "join of the poller")
        await lp.start()
        joins = [("join", {"client": "pp", "transport": "poll"}), ("join", {"client": "ll", "transport": "longpoll"})]
        await wait_presence(w, joins, 5, "join of the long poller")
        # polls go on past the window: nobody leaves, nobody joins again
        await asyncio.sleep(WINDOW + 1.5)
        check(p.requests >= 8 and lp.requests >= 4, f"poller made {p.requests} requests, long poller {lp.requests}")
        expect_eq(presence_events(w), joins, "while polling")
        t_stop = time.monotonic()
        p.abort()
        lp.abort()
        leaves = [("leave", {"client": "pp", "transport": "poll"}), ("leave", {"client": "ll", "transport": "longpoll"})]
        await w.wait_for(lambda: len(presence_events(w)) >= 4, WINDOW + 4, "two leaves")
        dt = time.monotonic() - t_stop
        check(dt >= WINDOW - 0.6, f"leaves came {dt:.1f} s after the last poll, window {WINDOW} s")
        expect_eq(sorted(presence_events(w)[2:], key=lambda e: e[1]["client"]),
                  sorted(leaves, key=lambda e: e[1]["client"]), "leaves")
        # coming back is a new join
        st, _, _ = get(gw, f"/channels/{ch}?transport=poll&client=pp&presence=1")
        expect_eq(st, 200, "poll again")
        await w.wait_for(lambda: len(presence_events(w)) >= 5, 5, "a second join")
        expect_eq(presence_events(w)[4], ("join", {"client": "pp", "transport": "poll"}), "join after coming back")
        hist = history(gw, ch)
        expect_eq([m["event"] for m in hist], ["join", "join", "leave", "leave", "join"], "history")
        expect_eq([m["id"] for m in hist], [1, 2, 3, 4, 5], "history ids")

async def test_longpoll_held_past_window():
    "a long poll held longer than --presence-window stays present: counted, no leave while held"
    with Gateway("--presence-window", WINDOW) as gw:
        ch = "pr:held"
        w = await watch(gw, ch)
        publish(gw, ch, "first")
        lp = LongPollClient(gw, ch, since="0", client="hold", timeout=WINDOW + 3, extra_query=[("presence", "1")])
        await lp.start()
        quiet = LongPollClient(gw, ch, since="1", client="quiet", timeout=WINDOW + 3)   # no presence
        quiet._task = asyncio.create_task(quiet._guarded())
        join = [("join", {"client": "hold", "transport": "longpoll"})]
        await wait_presence(w, join, 5, "join of the long poller")
        # its own join wakes it once; then it is held with nothing to wait for
        await wait_until(lambda: lp.in_flight and any(m["event"] == "join" for m in lp.messages), 3,
                         what="the long poll held after its join")
        held_at = time.monotonic()
        n = lp.requests
        await asyncio.sleep(WINDOW + 1.2)
        check(lp.requests == n, f"the long poll was answered while held ({lp.requests - n} replies): "
                                f"{[(m['id'], m['event']) for m in lp.messages]}")
        expect_eq(subs(gw, ch)["longpoll"], 2, f"count {time.monotonic() - held_at:.1f} s into the hold "
                                               f"(two held long polls)")
        expect_eq(presence_events(w), join, "presence events while the long poll is held")


if __name__ == "__main__":
    raise SystemExit(run([
        test_info_counts, test_join_leave_sse, test_join_leave_ws, test_join_leave_mux,
        test_leave_on_unsubscribe, test_join_leave_pollers, test_longpoll_held_past_window,
    ], budget=55, timeout=15))
