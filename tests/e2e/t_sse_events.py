#!/usr/bin/env python3
"""?sse_events=0 on an SSE subscribe: every message comes as an unnamed
event (EventSource's "message"), its name only in the envelope, so a
browser client sees every message without knowing its name in advance
(EventSource has no wildcard listener). welcome, gap and ping keep their
names, and the default (no flag) still names each event."""

import asyncio

from gwlib import Gateway, SSEClient, check, expect_eq, expect_error, info, publish, request, run

NAMES = ("chat", "constructor", "message", "toString", "score")


def unnamed_problem(p):
    # gwlib's SSE client expects event: NAME to match the envelope
    return p.startswith("event: 'message' but envelope says")


async def test_unnamed_messages():
    "sse_events=0: every message is an unnamed event carrying its envelope; welcome keeps its name"
    with Gateway() as gw:
        ch = "sse:unnamed"
        sub = SSEClient(gw, ch, extra_query=[("sse_events", "0")])
        await sub.start()
        for i, name in enumerate(NAMES, 1):
            st, _ = publish(gw, ch, {"n": i}, event=name)
            expect_eq(st, 201, f"publish event={name}")
        await sub.wait_count(len(NAMES), 5)
        names = [e[0] for e in sub.raw_events]
        expect_eq(names, ["welcome"] + ["message"] * len(NAMES), "SSE event names on the stream")
        expect_eq([m["event"] for m in sub.messages], list(NAMES), "envelope event names")
        expect_eq([m["id"] for m in sub.messages], list(range(1, len(NAMES) + 1)), "message ids")
        check(all(e[1] for e in sub.raw_events), f"an event without id: line: {sub.raw_events!r}")
        expect_eq([p for p in sub.problems if not unnamed_problem(p)], [], "SSE problems")
        sub.abort()


async def test_gap_keeps_its_name():
    "sse_events=0: a gap is still event: gap"
    with Gateway() as gw:
        ch = "sse:gap"
        for i in range(3):
            publish(gw, ch, {"n": i}, event="chat")
        epoch = info(gw, ch)["epoch"]
        old = "zz1" if epoch != "zz1" else "zz2"
        sub = SSEClient(gw, ch, since=f"{old}:2", extra_query=[("sse_events", "0")])
        await sub.start()
        await sub.wait_count(3, 5)
        names = [e[0] for e in sub.raw_events]
        expect_eq(names, ["welcome", "gap", "message", "message", "message"], "SSE event names")
        expect_eq(len(sub.gaps), 1, "gaps seen")
        expect_eq([p for p in sub.problems if not unnamed_problem(p)], [], "SSE problems")
        sub.abort()


async def test_default_and_one_stay_named():
    "no flag, or sse_events=1: each message is an event of its own name, as before"
    with Gateway() as gw:
        ch = "sse:named"
        a = SSEClient(gw, ch)
        b = SSEClient(gw, ch, extra_query=[("sse_events", "1")])
        await a.start()
        await b.start()
        for i, name in enumerate(NAMES, 1):
            publish(gw, ch, {"n": i}, event=name)
        for sub in (a, b):
            await sub.wait_count(len(NAMES), 5)
            expect_eq([e[0] for e in sub.raw_events], ["welcome"] + list(NAMES), "SSE event names")
            expect_eq(sub.problems, [], "SSE problems")
            sub.abort()


async def test_bad_value():
    "sse_events=2: 400 bad_sse_events, as JSON"
    with Gateway() as gw:
        resp = request(gw, "GET", "/channels/sse:bad?transport=sse&sse_events=2")
        expect_error(resp, 400, "bad_sse_events", "sse_events=2")


if __name__ == "__main__":
    raise SystemExit(run([test_unnamed_messages, test_gap_keeps_its_name, test_default_and_one_stay_named,
                          test_bad_value]))
