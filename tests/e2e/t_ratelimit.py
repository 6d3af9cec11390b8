#!/usr/bin/env python3
"""Abuse limits: --publish-rate-per-ip, --trusted-proxies, --max-subscriptions.

Each limit is hit (429 rate_limited JSON with Retry-After, counted in
/metrics, nothing stored) and recovered from after Retry-After.  The
client IP is the peer's, or, when the peer is a --trusted-proxies entry,
the rightmost X-Forwarded-For address that is not a trusted proxy: the
left part of the header is the client's to forge."""

import asyncio
import json
import subprocess
import time

from gwlib import Gateway, MuxClient, binary_path, check, expect_eq, info, metric_sum, metrics, request, run

RATE = 5


def pub(gw, ch, xff=None, body=b"x"):
    h = {"Content-Type": "text/plain"}
    if xff is not None:
        h["X-Forwarded-For"] = xff
    return request(gw, "POST", f"/channels/{ch}", body=body, headers=h)


def expect_limited(resp, what):
    st, h, body = resp
    expect_eq(st, 429, f"{what}: status")
    expect_eq(json.loads(body)["error"]["code"], "rate_limited", f"{what}: code")
    check(h.get("retry-after", "").isdigit() and int(h["retry-after"]) >= 1,
          f"{what}: Retry-After {h.get('retry-after')!r}")
    return int(h["retry-after"])


def burst(gw, ch, xff=None):
    """Publish until refused (at most 3 * RATE); the number stored, the 429."""
    for i in range(3 * RATE):
        r = pub(gw, ch, xff)
        if r[0] != 201:
            return i, r
    return 3 * RATE, None


async def test_publish_rate_hit_and_recovered():
    with Gateway("--publish-rate-per-ip", RATE) as gw:
        n, r = burst(gw, "r1")
        check(r is not None, f"{3 * RATE} publishes in a burst were all taken")
        check(RATE <= n <= RATE + 1, f"{n} publishes taken before the 429, want about {RATE}")
        retry = expect_limited(r, "a publish past the rate")
        expect_eq(info(gw, "r1")["last_id"], n, "the refused publish was not stored")
        expect_eq(metric_sum(metrics(gw), "anypush_rate_limited_total"), 1, "anypush_rate_limited_total")
        await asyncio.sleep(retry)
        expect_eq(pub(gw, "r1")[0], 201, f"a publish {retry} s later (Retry-After)")
        # a refusal does not spend: a publisher that waits is served
        expect_eq(info(gw, "r1")["last_id"], n + 1, "stored after the wait")


async def test_ws_publish_rate_shares_the_ip_bucket():
    with Gateway("--publish-rate-per-ip", RATE) as gw:
        m = MuxClient(gw)
        await m.start()
        acks = [await m.op({"op": "publish", "channel": "r4", "data": {"n": i}}) for i in range(RATE + 1)]
        ok = [a for a in acks if a.get("type") != "error"]
        bad = [a for a in acks if a.get("type") == "error"]
        check(RATE <= len(ok) <= RATE + 1 and len(ok) + len(bad) == RATE + 1, f"acks {acks}")
        # the bucket is the IP's: HTTP from the same address is refused too
        expect_limited(pub(gw, "r4"), "an HTTP publish from the same IP")
        if not bad:
            bad = [await m.op({"op": "publish", "channel": "r4", "data": {"n": "more"}})]
        expect_eq(bad[0].get("code"), "rate_limited", f"the /ws error frame {bad[0]}")
        stored = info(gw, "r4")["last_id"]
        expect_eq(stored, len(ok), "refused publishes were not stored")
        check(m.close_code is None and not m.done, f"the socket stays open: {m.describe()}")
        await asyncio.sleep(1.1)
        ack = await m.publish("r4", {"n": "later"})
        expect_eq(ack.get("id"), stored + 1, f"a /ws publish a second later: {ack}")
        check(metric_sum(metrics(gw), "anypush_rate_limited_total") >= 2, "anypush_rate_limited_total")
        await m.close()


async def test_subscriptions_per_connection():
    with Gateway("--max-subscriptions", "2") as gw:
        m = MuxClient(gw)
        await m.start()
        await m.subscribe("s1")
        await m.subscribe("s2")
        err = await m.op({"op": "subscribe", "channel": "s3"})
        expect_eq((err.get("type"), err.get("code")), ("error", "too_many_channels"), f"a third subscribe: {err}")
        check("--max-subscriptions" in err.get("message", ""), f"the message names the option: {err}")
        expect_eq(metric_sum(metrics(gw), "anypush_subscriptions_refused_total"), 1,
                  "anypush_subscriptions_refused_total")
        # another connection has its own count
        m2 = MuxClient(gw)
        await m2.start()
        await m2.subscribe("s3")
        # leaving one makes room
        ack = await m.op({"op": "unsubscribe", "channel": "s1"})
        expect_eq(ack.get("type"), "ack", f"unsubscribe: {ack}")
        await m.subscribe("s3")
        check(m.close_code is None and not m.done, f"the socket stays open: {m.describe()}")
        await m.close()
        await m2.close()


async def test_forwarded_for_only_from_trusted_proxies():
    # without --trusted-proxies the header is the client's own: ignored
    with Gateway("--publish-rate-per-ip", RATE) as gw:
        burst(gw, "r2", xff="198.51.100.1")
        expect_limited(pub(gw, "r2", xff="198.51.100.2"), "another X-Forwarded-For from an untrusted peer")
    with Gateway("--publish-rate-per-ip", RATE, "--trusted-proxies", "10.0.0.0/8, 127.0.0.1") as gw:
        n, r = burst(gw, "r3", xff="198.51.100.1")
        expect_limited(r, "198.51.100.1 past the rate")
        expect_eq(pub(gw, "r3", xff="198.51.100.2")[0], 201, "another client behind the same proxy")
        # what the client put left of the proxies' entries is not believed
        expect_limited(pub(gw, "r3", xff="203.0.113.9, 198.51.100.1"), "a forged entry left of the real one")
        expect_limited(pub(gw, "r3", xff="203.0.113.9, 198.51.100.1, 10.1.2.3"),
                       "the real one behind two trusted proxies")
        expect_eq(pub(gw, "r3", xff="junk")[0], 201, "a malformed header: the proxy's own address")


async def test_bad_proxy_list_refused_at_start():
    for bad in ("10.0.0.0/33", "example.com", "10.0.0.0/", "1.2.3.4,,"):
        r = subprocess.run([binary_path(), "--config", "", "--bind", "127.0.0.1", "--port", "0",
                            "--trusted-proxies", bad], capture_output=True, text=True, timeout=10)
        check(r.returncode != 0, f"--trusted-proxies {bad!r} was taken")
        check("--trusted-proxies" in r.stderr, f"no reason given for {bad!r}: {r.stderr[-300:]}")


if __name__ == "__main__":
    raise SystemExit(run([test_publish_rate_hit_and_recovered, test_ws_publish_rate_shares_the_ip_bucket,
                          test_subscriptions_per_connection,
                          test_forwarded_for_only_from_trusted_proxies,
                          test_bad_proxy_list_refused_at_start], budget=50, timeout=20))
