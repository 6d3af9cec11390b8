#!/usr/bin/env python3
"""1,000 messages to one channel while one client of each transport listens:
every transport gets exactly ids 1..1000, in order, with the same payloads."""

from gwlib import (Gateway, LongPollClient, PollClient, Publisher, SSEClient, WSClient, check,
                   epochs_problem, expect_eq, ids_problem, info, payload, run, scenario)

N = 1000
CH = "fan:out-4"
R = {}   # results of the scenario, checked by the test points


@scenario
async def fanout():
    """Publish 1000 messages with poll, longpoll, sse and ws clients
    listening; run by whichever point comes first, so each can run alone."""
    with Gateway() as gw:
        clients = {
            "poll": PollClient(gw, CH, interval=0.05),
            "longpoll": LongPollClient(gw, CH, timeout=10),
            "sse": SSEClient(gw, CH),
            "ws": WSClient(gw, CH),
        }
        for c in clients.values():
            await c.start()
        subs = info(gw, CH)["subscribers"]
        expect_eq((subs["sse"], subs["ws"]), (1, 1), "sse/ws subscribers before publishing")
        payloads = [payload(i, size=(i * 37) % 700) for i in range(1, N + 1)]
        R["payloads"] = payloads
        pub = Publisher(gw)
        try:
            acks = await pub.apublish_many(CH, payloads)
        finally:
            pub.close()
        R["acks"] = acks
        R["epoch"] = pub.epochs[CH]
        for c in clients.values():
            try:
                await c.wait_count(N, 15)
            except AssertionError as e:
                R.setdefault("waits", {})[c.kind] = str(e)
        R["clients"] = clients
        for c in clients.values():
            c.abort()
    return R


async def test_scenario():
    "publish 1000 messages with poll, longpoll, sse and ws clients listening"
    await fanout()
    expect_eq(R["acks"], list(range(1, N + 1)), "acknowledged ids")


async def check_transport(kind):
    await fanout()
    c = R["clients"][kind]
    ids = c.ids()
    prob = ids_problem(ids, list(range(1, N + 1)))
    check(prob is None, f"{kind}: {prob}; {R.get('waits', {}).get(kind, '')}")
    prob = epochs_problem(c.messages, R["epoch"])
    check(prob is None, f"{kind}: {prob}")
    expect_eq(c.gaps, [], f"{kind} gaps")
    for i, m in enumerate(c.messages):
        if m["data"] != R["payloads"][i]:
            raise AssertionError(f"{kind}: payload of id {m['id']} differs: {m['data']!r}")
        expect_eq(m["event"], "message", f"{kind} event of id {m['id']}")
    expect_eq(c.problems, [], f"{kind} protocol problems")


async def test_poll():
    "poll (50 ms interval) got ids 1..1000 in order, same payloads"
    await check_transport("poll")
    c = R["clients"]["poll"]
    check(c.requests < N, f"poll needed {c.requests} requests for {N} messages: no batching?")


async def test_longpoll():
    "longpoll got ids 1..1000 in order, same payloads"
    await check_transport("longpoll")


async def test_sse():
    "sse got ids 1..1000 in order, same payloads"
    await check_transport("sse")


async def test_ws():
    "ws got ids 1..1000 in order, same payloads"
    await check_transport("ws")


async def test_same_objects():
    "poll, longpoll and ws carry the identical message object (ts, channel, ...)"
    await fanout()
    cs = R["clients"]
    for i in range(min(len(cs["poll"].messages), len(cs["longpoll"].messages), len(cs["ws"].messages))):
        a, b, c = cs["poll"].messages[i], cs["longpoll"].messages[i], cs["ws"].messages[i]
        if not (a == b == c):
            raise AssertionError(f"message #{i + 1} differs:\npoll {a}\nlongpoll {b}\nws {c}")


if __name__ == "__main__":
    raise SystemExit(run([test_scenario, test_poll, test_longpoll, test_sse, test_ws, test_same_objects],
                         timeout=40))
