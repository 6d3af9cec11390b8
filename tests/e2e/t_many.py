#!/usr/bin/env python3
"""500 SSE and 500 WebSocket clients on one channel while a publisher sends
20 messages per second for 5 seconds: every client gets every message, in
order."""

import asyncio
import time

from gwlib import (Gateway, Publisher, SSEClient, WSClient, check, epochs_problem, expect_eq,
                   ids_problem, info, payload, run, scenario)

N_SSE = 500
N_WS = 500
RATE = 20
SECONDS = 5
N_MSG = RATE * SECONDS
CH = "many:one"
R = {}


async def start_all(clients, parallel=50):
    sem = asyncio.Semaphore(parallel)
    errors = []

    async def one(c):
        async with sem:
            try:
                await c.start(timeout=10)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{c.kind}: {e}")

    await asyncio.gather(*(one(c) for c in clients))
    return errors


@scenario
async def many():
    """500 sse + 500 ws clients subscribe; 20 msg/s for 5 s is published.
    Run by whichever point comes first, so each can run alone."""
    with Gateway() as gw:
        clients = [SSEClient(gw, CH) for _ in range(N_SSE)] + [WSClient(gw, CH) for _ in range(N_WS)]
        t0 = time.monotonic()
        errors = await start_all(clients)
        R["connect_seconds"] = time.monotonic() - t0
        R["connect_errors"] = errors
        R["info"] = info(gw, CH)
        payloads = [payload(i, size=200) for i in range(1, N_MSG + 1)]
        R["payloads"] = payloads
        pub = Publisher(gw)
        try:
            R["acks"] = await pub.apublish_many(CH, payloads, interval=1.0 / RATE)
        finally:
            pub.close()
        R["epoch"] = pub.epochs[CH]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(len(c.messages) >= N_MSG or c.done for c in clients):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        R["clients"] = clients
        for c in clients:
            c.abort()
    return R


async def test_scenario():
    "500 sse + 500 ws clients subscribe; 20 msg/s for 5 s is published"
    await many()
    errors = R["connect_errors"]
    check(not errors, f"{len(errors)} clients failed to subscribe, e.g. {errors[:3]}")
    expect_eq(R["acks"], list(range(1, N_MSG + 1)), "acked ids")


async def test_connected():
    "all 1000 clients were subscribed, info counts them"
    await many()
    check(not R["connect_errors"], f"{len(R['connect_errors'])} failed: {R['connect_errors'][:3]}")
    subs = R["info"]["subscribers"]
    expect_eq((subs.get("sse"), subs.get("ws")), (N_SSE, N_WS), "info subscribers sse/ws")


async def check_group(kind):
    await many()
    want = list(range(1, N_MSG + 1))
    bad = []
    for c in R["clients"]:
        if c.kind != kind:
            continue
        prob = ids_problem(c.ids(), want)
        if prob is None:
            prob = epochs_problem(c.messages, R["epoch"])
        if prob is None and [m["data"] for m in c.messages] != R["payloads"]:
            prob = "payloads differ"
        if prob is None and (c.gaps or c.problems):
            prob = f"gaps {c.gaps[:2]} problems {c.problems[:2]}"
        if prob is not None:
            bad.append(f"{prob} (end: {c.end_reason})")
    check(not bad, f"{len(bad)} of the {kind} clients are wrong, e.g.:\n" + "\n".join(bad[:5]))


async def test_sse_all():
    "every sse client got all 100 messages in order"
    await check_group("sse")


async def test_ws_all():
    "every ws client got all 100 messages in order"
    await check_group("ws")


if __name__ == "__main__":
    raise SystemExit(run([test_scenario, test_connected, test_sse_all, test_ws_all], timeout=45))
