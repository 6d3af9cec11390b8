#!/usr/bin/env python3
"""/metrics read exactly after a scenario: one client per transport gets 20
messages, then the messages age out (--history-age 1) and the clients go:
published 20, delivered 20 per transport, messages_alive and retained back
to where they started, no subscriber or stream left.  The text is valid
Prometheus exposition format 0.0.4 with its Content-Type, and every metric
in it is the one docs/protocol.md lists, of the type listed."""

import math
import re

from gwlib import (REPO, TRANSPORTS, Gateway, Publisher, check, expect_eq, get, make_client, metric_sum,
                   metrics, payload, request, run, wait_until)

N = 20
CH = "metered"
CONTENT_TYPE = "text/plain; version=0.0.4"
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({_NAME})(\{{(.*)\}})? (\S+)( -?[0-9]+)?")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def exposition_problems(text):
    """What in text breaks the Prometheus text format 0.0.4 (as
    Prometheus parses it), and the metric families with their types."""
    probs, types, seen = [], {}, set()
    if not text.endswith("\n"):
        probs.append("does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                name, typ = parts[2], parts[3] if len(parts) > 3 else ""
                if name in types:
                    probs.append(f"line {n}: a second TYPE for {name}")
                elif any(s == name for s, _ in seen):
                    probs.append(f"line {n}: TYPE of {name} after its samples")
                if typ not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    probs.append(f"line {n}: unknown type {typ!r}")
                types[name] = typ
            elif len(parts) >= 3 and parts[1] == "HELP":
                if not re.fullmatch(_NAME, parts[2]):
                    probs.append(f"line {n}: HELP of a bad name {parts[2]!r}")
            continue
        m = _SAMPLE.fullmatch(line)
        if not m:
            probs.append(f"line {n}: not a sample: {line!r}")
            continue
        name, labels, value = m.group(1), m.group(3), m.group(4)
        if labels is not None:
            rest = labels
            while rest:
                lm = _LABEL.match(rest)
                if not lm:
                    probs.append(f"line {n}: bad labels {labels!r}")
                    break
                rest = rest[lm.end():]
        try:
            v = float(value)
        except ValueError:
            probs.append(f"line {n}: value {value!r} is not a number")
            continue
        if name not in types:
            probs.append(f"line {n}: sample of {name} without a TYPE line before it")
        elif types[name] == "counter" and (not name.endswith("_total") or v < 0 or math.isnan(v)):
            probs.append(f"line {n}: counter {name} = {v} (want a name in _total, a value >= 0)")
        key = (name, labels or "")
        if key in seen:
            probs.append(f"line {n}: {name}{{{labels or ''}}} twice")
        seen.add(key)
    return probs, types


def documented_metrics():
    """{name: type} from the metrics table of docs/protocol.md."""
    out = {}
    for line in (REPO / "docs" / "protocol.md").read_text().splitlines():
        m = re.match(r"\| `(anypush_[a-z_]+)(\{[a-z_,]+\})?` \| (counter|gauge) \|", line)
        if m:
            out[m.group(1)] = m.group(3)
    return out


async def test_after_scenario():
    "after 20 messages to one client per transport, aged out: published 20, delivered 20 each, alive and retained back to baseline"
    with Gateway("--history-age", "1") as gw:
        base = metrics(gw)
        for k in ("anypush_published_total", "anypush_messages_alive", "anypush_retained_messages"):
            check(k in base, f"no {k} in /metrics")
        clients = [make_client(k, gw, CH, **({"interval": 0.05} if k == "poll" else {})) for k in TRANSPORTS]
        for c in clients:
            await c.start()
        pub = Publisher(gw)
        try:
            acks = await pub.apublish_many(CH, [payload(i) for i in range(1, N + 1)])
        finally:
            pub.close()
        expect_eq(acks, list(range(1, N + 1)), "acks")
        for c in clients:
            await c.wait_count(N, 10)
        m = metrics(gw)
        expect_eq(m["anypush_published_total"] - base["anypush_published_total"], N, "published_total")
        got = {k: m.get(f'anypush_delivered_total{{transport="{k}"}}', 0) -
               base.get(f'anypush_delivered_total{{transport="{k}"}}', 0) for k in TRANSPORTS}
        expect_eq(got, {k: N for k in TRANSPORTS}, "delivered_total per transport")
        expect_eq(m["anypush_retained_messages"], base["anypush_retained_messages"] + N, "retained while kept")
        for c in clients:
            c.abort()
        # the messages age out (1 s) and every reference to them goes:
        # waited for, not slept for
        await wait_until(lambda: metrics(gw)["anypush_retained_messages"] == base["anypush_retained_messages"],
                         10, what="retained_messages back to its baseline (history age 1 s)")
        await wait_until(lambda: metrics(gw)["anypush_messages_alive"] == base["anypush_messages_alive"], 5,
                         what=f"messages_alive back to {base['anypush_messages_alive']:.0f} "
                              f"(now {metrics(gw)['anypush_messages_alive']:.0f})")
        await wait_until(lambda: (metric_sum(metrics(gw), "anypush_subscribers") == 0
                                  and metrics(gw)["anypush_streams"] == 0), 10,
                         what="no subscriber and no stream left once the clients are gone")
        m = metrics(gw)
        expect_eq(m["anypush_evicted_total"] - base["anypush_evicted_total"], N, "evicted_total (aged out)")
        expect_eq(m["anypush_retained_bytes"], base["anypush_retained_bytes"], "retained_bytes")
        expect_eq(m["anypush_published_total"] - base["anypush_published_total"], N, "published_total after")


async def test_format():
    "/metrics is Prometheus text 0.0.4: its Content-Type, a TYPE before each family, counters in _total; HEAD the same without a body"
    with Gateway() as gw:
        st, hdrs, body = get(gw, "/metrics")
        expect_eq(st, 200, "GET /metrics")
        expect_eq(hdrs.get("content-type"), CONTENT_TYPE, "Content-Type")
        probs, types = exposition_problems(body.decode("utf-8"))
        check(not probs, "\n".join(probs[:10]))
        check(len(types) >= 10, f"only {len(types)} metric families: {sorted(types)}")
        st, hhdrs, hbody = request(gw, "HEAD", "/metrics")
        expect_eq((st, hhdrs.get("content-type"), hbody), (200, CONTENT_TYPE, b""), "HEAD /metrics")


async def test_documented():
    "every metric /metrics shows is in docs/protocol.md's table with its type, and every row there is shown"
    with Gateway() as gw:
        _, _, body = get(gw, "/metrics")
        _, types = exposition_problems(body.decode("utf-8"))
    doc = documented_metrics()
    check(doc, "no metrics table found in docs/protocol.md")
    undocumented = {k: v for k, v in types.items() if k not in doc}
    missing = sorted(set(doc) - set(types))
    wrong = {k: (v, doc[k]) for k, v in types.items() if k in doc and doc[k] != v}
    check(not undocumented, f"in /metrics but not in docs/protocol.md: {undocumented}")
    check(not missing, f"in docs/protocol.md but not in /metrics: {missing}")
    check(not wrong, f"type in /metrics vs the doc: {wrong}")


if __name__ == "__main__":
    raise SystemExit(run([test_after_scenario, test_format, test_documented]))
