#!/usr/bin/env python3
"""Per-transport cost counters in /metrics: anypush_requests_total,
anypush_sent_bytes_total and anypush_cpu_seconds_total, by transport. After
one subscriber of one transport has received messages, that transport's
counters have moved (its bytes at least the payload delivered, plus an
HTTP status line per HTTP reply) and no other transport's have; publishing
and /metrics itself are charged to no transport."""

import asyncio

from gwlib import Gateway, check, expect_eq, make_client, metrics, publish, run

KINDS = ("poll", "longpoll", "sse", "ws")
COUNTERS = ("anypush_requests_total", "anypush_sent_bytes_total", "anypush_cpu_seconds_total")
N = 20
PAYLOAD = "x" * 300


def costs(gw):
    m = metrics(gw)
    return {c: {k: m.get(f'{c}{{transport="{k}"}}') for k in KINDS} for c in COUNTERS}


async def scenario(kind):
    with Gateway() as gw:
        ch = f"cost:{kind}"
        # one message to start from (since=0): a long-poll client would
        # otherwise learn the tail with a short poll, or wait held
        expect_eq(publish(gw, ch, PAYLOAD)[0], 201, "first publish")
        before = costs(gw)
        for c in COUNTERS:
            for k in KINDS:
                check(before[c][k] is not None, f"{c}{{transport={k}}} missing from /metrics")
        sub = make_client(kind, gw, ch, since=0)
        await sub.start()
        for i in range(N):
            st, _ = publish(gw, ch, PAYLOAD)
            expect_eq(st, 201, "publish")
            if kind in ("poll", "longpoll"):
                await asyncio.sleep(0.02)
        await sub.wait_count(N + 1, 10)
        polls = getattr(sub, "requests", None)
        if kind == "ws":
            await sub.close()
        else:
            sub.abort()
        await asyncio.sleep(0.5)   # the gateway sees the close and counts its last bytes
        after = costs(gw)
        delta = {c: {k: after[c][k] - before[c][k] for k in KINDS} for c in COUNTERS}
        for k in KINDS:
            if k == kind:
                continue
            for c in COUNTERS:
                expect_eq(delta[c][k], 0, f"{kind} scenario: {c} of {k}")
        reqs = delta["anypush_requests_total"][kind]
        sent = delta["anypush_sent_bytes_total"][kind]
        cpu = delta["anypush_cpu_seconds_total"][kind]
        delivered = (N + 1) * len(PAYLOAD)
        if kind == "ws":
            expect_eq(reqs, 1, "ws: one connection")
        elif polls is not None:
            # the last request may have been cut before it reached the gateway
            check(polls - 1 <= reqs <= polls, f"{kind}: {reqs} requests counted, the client sent {polls}")
        else:
            expect_eq(reqs, 1, f"{kind}: one request")
        floor = delivered + (reqs * len("HTTP/1.1 200 OK\r\n") if kind != "ws" else 0)
        check(sent >= floor, f"{kind}: {sent} bytes counted, less than {floor} (payload and status lines)")
        check(sent < 20 * floor, f"{kind}: {sent} bytes counted for a {floor}-byte scenario")
        check(0 < cpu < 10, f"{kind}: {cpu} s of CPU counted")
        return reqs, sent, cpu


async def held(kind):
    """A stream that stays open: what it was sent shows in /metrics without
    waiting for its close, once a write comes a second after the last read."""
    with Gateway() as gw:
        ch = f"held:{kind}"
        before = costs(gw)
        sub = make_client(kind, gw, ch)
        await sub.start()
        for i in range(N):
            expect_eq(publish(gw, ch, PAYLOAD)[0], 201, "publish")
        await sub.wait_count(N, 10)
        await asyncio.sleep(1.1)
        expect_eq(publish(gw, ch, PAYLOAD)[0], 201, "publish a second later")
        await sub.wait_count(N + 1, 10)
        # the read follows the write on the loop: give it a moment
        floor = (N + 1) * len(PAYLOAD)
        sent = 0
        for _ in range(50):
            after = costs(gw)
            sent = after["anypush_sent_bytes_total"][kind] - before["anypush_sent_bytes_total"][kind]
            if sent >= floor:
                break
            await asyncio.sleep(0.02)
        check(sent >= floor, f"{kind}: {sent} bytes counted while open, less than the {floor} delivered")
        cpu = after["anypush_cpu_seconds_total"][kind] - before["anypush_cpu_seconds_total"][kind]
        check(cpu > 0, f"{kind}: no CPU counted while open")
        sub.abort()
        return sent


def make_held_test(kind):
    async def test():
        sent = await held(kind)
        print(f"# {kind} held: {sent:.0f} bytes counted before the close")
    test.__doc__ = f"{kind}: a held stream's bytes are counted while it is open, within a second of a write"
    test.__name__ = f"test_held_{kind}"
    return test


def make_test(kind):
    async def test():
        reqs, sent, cpu = await scenario(kind)
        print(f"# {kind}: {reqs:.0f} requests, {sent:.0f} bytes, {cpu * 1e3:.3f} ms CPU for {N} messages")
    test.__doc__ = f"{kind}: its requests, bytes (payload and headers) and CPU are counted, no other transport's"
    test.__name__ = f"test_{kind}"
    return test


if __name__ == "__main__":
    raise SystemExit(run([make_test(k) for k in KINDS] + [make_held_test(k) for k in ("sse", "ws")], budget=60.0))
