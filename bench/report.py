#!/usr/bin/env python3
"""bench/report.py RESULTS.jsonl [--docs] [--md FILE] [--plots DIR] [--keep-plots] [--redis FILE]

Writes bench/out/benchmarks.md (tables, targets, ratios anypush/peer) and PNG
plots in bench/out/bench (gnuplot, pngcairo) from the JSON lines bench/run
wrote; --docs writes the tracked docs/benchmarks.md and docs/bench/ instead.
Python 3 stdlib only.
The hand-written analysis in bench/analysis.md is included verbatim.
--keep-plots links the PNGs already in --plots instead of redrawing them, so
the page can be rewritten from committed results without gnuplot
(tests/docs/t_bench_report.py does).
The results of `bench/run redis` (results-redis.jsonl beside RESULTS, or
--redis FILE) become the section "Several nodes on one Redis"; given alone
(their preset is "redis"), they make bench/out/redis.md with that section
only."""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVERS = ["anypush", "nchan", "socketio"]
PEERS = ["nchan", "socketio"]
TRS = ["poll", "longpoll", "sse", "ws", "mix"]
TR_LABEL = {"poll": "short poll", "longpoll": "long poll", "sse": "SSE", "ws": "WebSocket", "mix": "mixed (all four)"}
TR_SIO = {"longpoll": "long poll (Engine.IO polling)", "ws": "WebSocket"}
# the side-by-side sections and the targets compare runs at these sizes
FAN_SUBS = 1000
LIGHT_SUBS = 100
BIG_SUBS = 5000  # the fan-out whose p99 latency is a target
# the shapes (bench/run --full): subscribers spread over these channel counts
SHAPE_SUBS = 1000
SHAPE_CHANNELS = (1, 250, 1000)
IDLE_CPU_PCT = 0.5  # "no measurable CPU": at most this % of one core
KEEP_PLOTS = False  # --keep-plots


def load(path):
    meta, runs = {}, []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if "meta" in d:
            meta = d
        else:
            runs.append(d)
    return meta, runs


def find(runs, scenario, server, transport, subs):
    """the run of a scenario at a number of subscribers: the full preset runs
    each fan-out scenario at 1, 100, 1,000 and 5,000, so subs must match too"""
    for r in runs:
        if (r.get("scenario") == scenario and r["server"] == server and r["transport"] == transport
                and r["subs"] == subs):
            return r
    return None


def fnum(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def cpu(r):
    """server CPU µs per delivery: schedstat (ns) when it saw CPU, else ticks"""
    if r is None:
        return None
    v = r.get("srv_sched_us_per_delivery")
    return v if v else r.get("srv_cpu_us_per_delivery")


def ok_accounting(r):
    return r["lost"] == 0 and r["dup"] == 0 and r["ooo"] == 0 and r.get("bogus", 0) == 0


# ---------------------------------------------------------------- plots
def gnuplot(script, tmp):
    if not shutil.which("gnuplot"):
        return False
    p = Path(tmp) / "plot.gp"
    p.write_text(script)
    r = subprocess.run(["gnuplot", str(p)], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
    return r.returncode == 0


TERM = 'set terminal pngcairo size 960,540 font "DejaVu Sans,11" noenhanced\n'
COLORS = {"anypush": "#1f77b4", "nchan": "#2ca02c", "socketio": "#d62728"}
DASH = {"poll": 3, "longpoll": 2, "sse": 1, "ws": 1, "mix": 4}
PT = {"poll": 4, "longpoll": 6, "sse": 8, "ws": 7, "mix": 12}


def plot_latency(runs, out, tmp):
    """p99 latency vs deliveries/s, one line per server and transport"""
    series = []
    for srv in SERVERS:
        for tr in TRS[:4]:
            pts = sorted((r["deliveries_per_s"], r["lat_p99_ms"], r["lat_p50_ms"]) for r in runs
                         if r["server"] == srv and r["transport"] == tr and r.get("mode") == "stream"
                         and r["channels"] == 1 and r["size"] <= 100 and r["delivered"] > 0
                         and (r["scenario"].startswith("fanout") or r["scenario"] in ("light", "saturate")))
            if pts:
                f = Path(tmp) / f"lat-{srv}-{tr}.dat"
                f.write_text("".join(f"{x} {y} {z}\n" for x, y, z in pts))
                series.append((srv, tr, f))
    if not series:
        return None
    png = out / "latency_vs_rate.png"
    if KEEP_PLOTS:
        return png if png.exists() else None
    plots = ", ".join(
        f'"{f}" using 1:2 with linespoints lc rgb "{COLORS[s]}" dt {DASH[t]} pt {PT[t]} lw 2 title "{s} {TR_LABEL[t]}"'
        for s, t, f in series)
    ok = gnuplot(TERM + f'''set output "{png}"
set title "p99 publish-to-delivery latency vs delivery rate (one channel, 100 B)"
set logscale xy
set xlabel "deliveries per second (all subscribers)"
set ylabel "p99 latency, ms"
set key outside right top
set grid
plot {plots}
''', tmp)
    return png if ok else None


def shape_runs(runs, srv, tr, paced):
    """the shape runs of one server and transport, by channel count"""
    out = []
    for ch in SHAPE_CHANNELS:
        r = find(runs, f"shape{ch}" + ("" if paced else "-max"), srv, tr, SHAPE_SUBS)
        if r and r["delivered"] > 0:
            out.append((ch, r))
    return out


def plot_cpu_channels(runs, out, tmp):
    """server CPU per delivery vs the number of channels the same
    subscribers are spread over, one line per server, transport and pace"""
    series = []
    for srv in SERVERS:
        for tr in ("sse", "ws"):
            for paced in (True, False):
                pts = [(ch, cpu(r)) for ch, r in shape_runs(runs, srv, tr, paced) if cpu(r)]
                if pts:
                    f = Path(tmp) / f"shape-{srv}-{tr}-{int(paced)}.dat"
                    f.write_text("".join(f"{x} {y}\n" for x, y in pts))
                    series.append((srv, tr, paced, f))
    if not series:
        return None
    png = out / "cpu_vs_channels.png"
    if KEEP_PLOTS:
        return png if png.exists() else None
    plots = ", ".join(
        f'"{f}" using 1:2 with linespoints lc rgb "{COLORS[s]}" dt {1 if paced else 2} pt {PT[t]} lw 2 '
        f'title "{s} {TR_LABEL[t]}, {"500 msg/s" if paced else "closed loop"}"'
        for s, t, paced, f in series)
    ok = gnuplot(TERM + f'''set output "{png}"
set title "server CPU per delivery, {SHAPE_SUBS:,} subscribers spread over N channels (lower is better)"
set logscale xy
set xrange [0.7:1500]
set xtics ({", ".join(f'"{c:,}" {c}' for c in SHAPE_CHANNELS)})
set xlabel "channels (subscribers per channel = {SHAPE_SUBS:,} / channels)"
set ylabel "µs of server CPU per delivered message"
set key outside right top
set grid
plot {plots}
''', tmp)
    return png if ok else None


def bar_plot(rows, title, ylabel, png, tmp, log=False):
    """rows: [(label, {server: value})] -> clustered bars"""
    if KEEP_PLOTS:
        return png if png.exists() else None
    f = Path(tmp) / (png.stem + ".dat")
    lines = []
    for label, vals in rows:
        lines.append(f'"{label}" ' + " ".join(str(vals.get(s)) if vals.get(s) is not None else "NaN" for s in SERVERS))
    f.write_text("\n".join(lines) + "\n")
    cols = ", ".join(
        f'"{f}" using {i + 2}:xtic(1) title "{s}" lc rgb "{COLORS[s]}"' for i, s in enumerate(SERVERS))
    ok = gnuplot(TERM + f'''set output "{png}"
set title "{title}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "{ylabel}"
set grid ytics
set key top left
set xtics rotate by -20
{"set logscale y" if log else "set yrange [0:*]"}
plot {cols}
''', tmp)
    return png if ok else None


# ---------------------------------------------------------------- markdown
def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def redis_section(path):
    """the section of `bench/run redis`'s results: 1, 2, 3 nodes and Nchan"""
    meta, runs = load(path)
    m = meta.get("meta", {})
    stream = [r for r in runs if r.get("mode") == "stream"]
    mem = [r for r in runs if r.get("mode") == "redis-memory"]
    L = ["## Several nodes on one Redis\n"]
    L.append(f"Generated by `bench/report.py` from `{Path(path).name}`, which this command made on "
             f"{m.get('date', '?')} (anypush git {m.get('git', '?')}, {m.get('redis', '?').split(' sha=')[0]}, "
             f"libnginx-mod-nchan {m.get('nchan', '?')}; the machine above):\n")
    L.append("```sh\n" + meta.get("command", "bench/run redis") + "\n```\n")
    L.append("Each run starts a fresh `redis-server` (127.0.0.1, no persistence) and 1, 2 or 3 fresh "
             "nodes sharing it: anypush with `--redis redis://127.0.0.1:PORT`, or one nginx+Nchan per "
             "node with `nchan_redis_url` (`bench/peers/nchan-redis.conf.in`). There is no load "
             "balancer: `bench/loadgen --port P1,P2,P3` spreads the clients over the nodes directly, "
             "subscriber *i* and publisher connection *i* (of 4) to node *i* mod *n*, so with several "
             "nodes most deliveries cross nodes through Redis (a balancer would add its own CPU and "
             "hide the nodes'; `docs/scaling.md` and `tests/e2e/t_redis_lb.py` run the balancer). "
             "Loss, duplicates, order and latency are counted as above. **Server CPU** is every node "
             "process plus the `redis-server`, per delivery; *of which Redis* is the `redis-server`'s "
             "share. **Redis calls** are the growth of `INFO commandstats` over the whole run (the "
             "subscribers' opening, the warm-up messages and the measured ones) divided by every publish "
             "of the run; they include the commands a script runs (for anypush one `EVALSHA` per "
             "publish, whose `HINCRBY`, `XADD`, `PEXPIRE`, `PUBLISH`... count too). **Bytes in/out** "
             "are the growth of `total_net_input_bytes` / `total_net_output_bytes` per publish: what the "
             "nodes sent Redis, and what Redis sent them (replies and pub/sub notifications, one per "
             "node that has subscribers). Two cores run the nodes, Redis and the load generator: more "
             "nodes cannot add CPU here, they show what the sharing costs. *msg/s* is the deliveries per second "
             "divided by the subscribers: the publish rate the servers kept up with (a server whose "
             "publishes are slow to be answered publishes less than asked, since each publisher "
             "connection waits for its answer).\n")
    groups = []
    for r in stream:
        key = (r["scenario"], r["transport"], r["subs"], r["rate"], r["count"], r["size"])
        if key not in groups:
            groups.append(key)
    for sc, tr, subs, rate, count, size in groups:
        what = "Saturating publish" if rate == 0 else "Fan-out"
        rate_s = "publishes as fast as 4 connections get answers" if rate == 0 else f"{rate:.0f} msg/s"
        L.append(f"### {what}, {subs:,} subscribers on one channel, {TR_LABEL[tr]} ({rate_s}, "
                 f"{count} messages, {size} B)\n")
        rows = []
        for r in stream:
            if (r["scenario"], r["transport"], r["subs"], r["rate"], r["count"], r["size"]) != \
                    (sc, tr, subs, rate, count, size):
                continue
            rd = r.get("redis", {})
            calls = rd.get("calls", {})
            n = max(rd.get("publishes", 1), 1)
            scripts = (calls.get("evalsha", 0) + calls.get("eval", 0)) / n
            rows.append([r["server"], r["nodes"], fnum(r["deliveries_per_s"] / r["subs"], 0),
                         fnum(r["deliveries_per_s"], 0), fnum(cpu(r), 2),
                         fnum(r.get("redis_sched_us_per_delivery"), 2), fnum(r["lat_p50_ms"], 2),
                         fnum(r["lat_p99_ms"], 2), f"{r['lost']}/{r['dup']}/{r['ooo']}",
                         fnum(rd.get("calls_per_publish"), 1), fnum(scripts, 2),
                         fnum(rd.get("in_bytes_per_publish"), 0), fnum(rd.get("out_bytes_per_publish"), 0)])
        L.append(table(["server", "nodes", "msg/s", "deliv/s", "server CPU µs/deliv", "of which Redis", "p50 ms",
                        "p99 ms", "lost/dup/ooo", "Redis calls/publish", "scripts per publish",
                        "Redis B in/publish", "Redis B out/publish"], rows))
    if mem:
        m0 = mem[0]
        L.append(f"### Redis memory per channel ({m0['channels']} channels filled to {m0['history']} "
                 "messages through one node)\n")
        L.append("`used_memory` (INFO memory) with the filled channels, once the node stopped, minus "
                 "`used_memory` after `FLUSHALL`, divided by the channels; for anypush also `MEMORY USAGE` "
                 "of a channel's stream (`ap:{c}:s`) and meta hash (`ap:{c}:m`). The size is the "
                 "loadgen's message data; anypush stores it with its record head (time stamp, flags, "
                 "event, client id).\n")
        rows = []
        for r in mem:
            per_msg = r["per_channel_bytes"] / r["history"]
            mu = r.get("memory_usage_avg", {})
            rows.append([r["server"], r["size"], f"{r['published']:,}", f"{r['lost']}/{r['dup']}/{r['ooo']}",
                         r["keys"], fnum(r["per_channel_bytes"] / 1024, 1), fnum(per_msg, 0),
                         fnum(per_msg - r["size"], 0),
                         fnum(mu["s"] / 1024, 1) if "s" in mu else "–", fnum(mu.get("m"), 0)])
        L.append(table(["server", "message B", "published", "lost/dup/ooo", "keys", "KiB per channel",
                        "B per message", "B per message beyond the data", "stream KiB (MEMORY USAGE)",
                        "meta B"], rows))
        for srv in ("anypush", "nchan"):
            two = sorted((r for r in mem if r["server"] == srv), key=lambda r: r["size"])
            if len(two) >= 2 and two[-1]["size"] > two[0]["size"]:
                lo, hi = two[0], two[-1]
                pm = lambda r: r["per_channel_bytes"] / r["history"]  # noqa: E731
                slope = (pm(hi) - pm(lo)) / (hi["size"] - lo["size"])
                base = pm(lo) - slope * lo["size"]
                L.append(f"{srv}: a channel holding *H* messages of *S* bytes takes about "
                         f"*H* × ({slope:.2f} × *S* + {base:.0f}) bytes of Redis memory (the line through "
                         f"the {lo['size']} B and {hi['size']} B runs).\n")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--docs", action="store_true",
                    help="--md docs/benchmarks.md --plots docs/bench (the tracked page)")
    ap.add_argument("--md", default="", help="the page (default bench/out/benchmarks.md)")
    ap.add_argument("--plots", default="", help="the PNGs (default bench/out/bench)")
    ap.add_argument("--keep-plots", action="store_true", help="link the PNGs in --plots, do not redraw them")
    ap.add_argument("--redis", default="", help="results of `bench/run redis` "
                    "(default: results-redis.jsonl beside RESULTS, when it is there)")
    a = ap.parse_args()
    out = REPO / "docs" if a.docs else BENCH / "out"
    a.md = a.md or str(out / "benchmarks.md")
    a.plots = a.plots or str(out / "bench")
    global KEEP_PLOTS
    KEEP_PLOTS = a.keep_plots
    meta, runs = load(a.results)
    if meta.get("preset") == "redis":
        md_path = Path(a.md) if a.md != str(out / "benchmarks.md") else out / "redis.md"
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text("# Benchmarks: several nodes on one Redis\n\n" + redis_section(a.results))
        print(f"wrote {md_path}", file=sys.stderr)
        return
    redis_results = Path(a.redis) if a.redis else Path(a.results).parent / "results-redis.jsonl"
    m = meta.get("meta", {})
    preset = meta.get("preset", "?")
    plots = Path(a.plots)
    plots.mkdir(parents=True, exist_ok=True)
    md_path = Path(a.md)
    rel = lambda p: Path(p).resolve().relative_to(md_path.parent.resolve()).as_posix()  # noqa: E731
    stream = [r for r in runs if r.get("mode") != "idle"]
    idle = [r for r in runs if r.get("mode") == "idle"]
    fan = "fanout" if any(r["scenario"] == "fanout" for r in runs) else "fanout-moderate"
    light = "light" if any(r["scenario"] == "light" for r in runs) else "fanout-light"

    def fanrun(srv, tr):
        return find(stream, fan, srv, tr, FAN_SUBS)

    def lightrun(srv, tr):
        return find(stream, light, srv, tr, LIGHT_SUBS)

    def bigrun(srv, tr):
        return find(stream, fan, srv, tr, BIG_SUBS)

    def idlerun(srv, tr, n=1000):
        for r in idle:
            if r["server"] == srv and r["transport"] == tr and r["subs"] == n:
                return r
        return None

    L = []
    L.append("# Benchmarks\n")
    L.append(f"Generated by `bench/report.py` from `{Path(a.results).name}` ({preset} preset). "
             "Do not edit by hand: rerun the suite instead.\n")
    L.append("```sh\n" + meta.get("command", "bench/run --quick") + "\n```\n")
    L.append("Every run starts a fresh server on 127.0.0.1, opens the subscribers, checks that the server "
             "holds them, sends 20 unmeasured warm-up messages, then publishes the measured messages over "
             "HTTP keep-alive from `bench/loadgen` (C, epoll, one thread). Each message carries "
             "`{\"seq\",\"t\",\"p\",\"q\",\"pad\"}`: per-channel sequence number, send time in µs, publisher "
             "connection and its own counter. Every subscriber checks every message: *lost* = never "
             "arrived, *dup* = arrived twice, *ooo* = arrived before an earlier message of the same "
             "publisher connection (that connection waits for each ack, so the server must keep its order). "
             "Latency is publish-to-delivery as seen by the load generator (same clock). Server CPU is "
             "the sum of the server's threads' run time (`/proc/PID/task/*/schedstat`; `utime+stime` from "
             "`/proc/PID/stat` is in the JSON too), over the measured window, divided by deliveries; it "
             "includes the cost of the publishes. For Nchan it is the nginx master plus its worker; for "
             "Socket.IO the node process. Bytes per delivery are the subscribers' TCP payload bytes, both "
             "directions, including HTTP heads and WebSocket framing. Memory per connection is the growth "
             "of the server's VmRSS (summed over its processes) after opening N idle subscribers, "
             "divided by N.\n")
    L.append("## Machine\n")
    L.append(table(["", ""], [
        ["CPU", f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores (shared with the load generator and "
                "other jobs: numbers are noisy)"],
        ["memory", f"{m.get('mem_mb', '?')} MiB"], ["OS", f"{m.get('os', '?')}, kernel {m.get('kernel', '?')}"],
        ["anypush", f"{m.get('anypush', '?')} (git {m.get('git', '?')}), "
                    f"{m.get('anypush_threads', '1 MHD thread (default)')}"],
        ["Nchan", f"libnginx-mod-nchan {m.get('nchan', '?')} on {m.get('nginx', '?')}, 1 worker process"],
        ["Socket.IO", f"socket.io {m.get('socketio', '?')} on node {m.get('node', '?')}"],
        ["fd limit", m.get("fd_limit", "?")], ["date", m.get("date", "?")]]))
    L.append("Server settings: anypush `--history-size 5000`, everything else default. Nchan "
             "`nchan_message_buffer_length 5000`, `nchan_message_timeout 10m`, `worker_processes 1`, "
             "subscribers start at the oldest message of a fresh channel (`bench/peers/nchan.conf.in`). "
             "Socket.IO: one room per channel, `perMessageDeflate` and HTTP compression off, the publish "
             "endpoint `POST /publish?ch=C` emits the parsed JSON to the room (`bench/peers/sio_server.js`). "
             "Socket.IO has no SSE and no short-poll transport; its long-poll column is Engine.IO polling.\n")

    # ---- targets
    L.append("## Targets\n")
    trows = []
    for tr in ["poll", "longpoll", "sse", "ws"]:
        a_, n_ = fanrun("anypush", tr), fanrun("nchan", tr)
        if a_ and n_:
            rr = cpu(a_) / cpu(n_) if cpu(n_) else None
            trows.append([f"server CPU per delivery at {FAN_SUBS:,} subscribers ({a_['rate']:.0f} msg/s) "
                          f"≤ 0.6× Nchan, {TR_LABEL[tr]}",
                          f"{fnum(cpu(a_), 2)} µs vs {fnum(cpu(n_), 2)} µs = {rr:.2f}×" if rr else "–",
                          "**met**" if rr is not None and rr <= 0.6 else "**missed**"])
    for ch in SHAPE_CHANNELS:
        for paced in (True, False):
            for tr in ["sse", "ws"]:
                sc = f"shape{ch}" + ("" if paced else "-max")
                a_, n_ = find(stream, sc, "anypush", tr, SHAPE_SUBS), find(stream, sc, "nchan", tr, SHAPE_SUBS)
                if a_ and n_:
                    rr = cpu(a_) / cpu(n_) if cpu(n_) else None
                    trows.append([f"server CPU per delivery, {SHAPE_SUBS:,} subscribers on {ch:,} "
                                  f"channel{'s' if ch > 1 else ''} "
                                  f"({'500 msg/s' if paced else 'closed loop'}) ≤ 0.6× Nchan, {TR_LABEL[tr]}",
                                  f"{fnum(cpu(a_), 2)} µs vs {fnum(cpu(n_), 2)} µs = {rr:.2f}×" if rr else "–",
                                  "**met**" if rr is not None and rr <= 0.6 else "**missed**"])
    for tr in ["sse", "ws"]:
        a_, n_ = bigrun("anypush", tr), bigrun("nchan", tr)
        if a_ and n_:
            trows.append([f"p99 latency at {BIG_SUBS:,} subscribers ({a_['rate']:.0f} msg/s) ≤ Nchan's, "
                          f"nothing lost, {TR_LABEL[tr]}",
                          f"{fnum(a_['lat_p99_ms'], 2)} ms vs {fnum(n_['lat_p99_ms'], 2)} ms; "
                          f"anypush lost {fnum(a_['lost'])}",
                          "**met**" if a_["lat_p99_ms"] <= n_["lat_p99_ms"] and ok_accounting(a_)
                          else "**missed**"])
    for tr in ["poll", "longpoll", "sse", "ws"]:
        a_, n_ = lightrun("anypush", tr), lightrun("nchan", tr)
        if a_ and n_:
            trows.append([f"p99 latency at light load ({LIGHT_SUBS:,} subscribers, {a_['rate']:.0f} msg/s) "
                          f"≤ Nchan's, {TR_LABEL[tr]}",
                          f"{fnum(a_['lat_p99_ms'], 2)} ms vs {fnum(n_['lat_p99_ms'], 2)} ms",
                          "**met**" if a_["lat_p99_ms"] <= n_["lat_p99_ms"] else "**missed**"])
    for n in (1000, 10000):
        for tr in ["sse", "ws", "longpoll"]:
            r, q = idlerun("anypush", tr, n), idlerun("nchan", tr, n)
            if r and q:
                rr = r["mem_per_conn_bytes"] / q["mem_per_conn_bytes"] if q["mem_per_conn_bytes"] > 0 else None
                trows.append([f"memory per idle {TR_LABEL[tr]} connection ≤ 5 KB and ≤ 0.5× Nchan's "
                              f"({n:,} connections)",
                              f"{r['mem_per_conn_bytes'] / 1000:.1f} KB vs {q['mem_per_conn_bytes'] / 1000:.1f} KB"
                              + (f" = {rr:.2f}×" if rr is not None else ""),
                              "**met**" if r["mem_per_conn_bytes"] <= 5000 and rr is not None and rr <= 0.5
                              else "**missed**"])
            elif r:
                trows.append([f"memory per idle {TR_LABEL[tr]} connection ≤ 5 KB ({n:,} connections)",
                              f"{r['mem_per_conn_bytes'] / 1000:.1f} KB",
                              "**met**" if r["mem_per_conn_bytes"] <= 5000 else "**missed**"])
    for tr in ["sse", "ws", "longpoll"]:
        r = idlerun("anypush", tr, 10000)
        if r and r.get("idle_window_s"):
            pct = r["idle_srv_cpu_s"] * 100 / r["idle_window_s"]
            trows.append([f"an idle gateway holding 10,000 {TR_LABEL[tr]} connections uses no measurable CPU "
                          f"between heartbeats (≤ {IDLE_CPU_PCT} % of a core)",
                          f"{r['idle_srv_cpu_s'] * 1000:.1f} ms in {r['idle_window_s']:.1f} s = {pct:.2f} %",
                          "**met**" if pct <= IDLE_CPU_PCT else "**missed**"])
    ap_runs = [r for r in stream if r["server"] == "anypush"]
    bad = [r for r in ap_runs if not ok_accounting(r)]
    trows.append(["zero loss, duplicates and reordering in every anypush run (reconnects included)",
                  f"{len(ap_runs) - len(bad)}/{len(ap_runs)} runs clean; lost {sum(r['lost'] for r in ap_runs)}, "
                  f"dup {sum(r['dup'] for r in ap_runs)}, ooo {sum(r['ooo'] for r in ap_runs)}",
                  "**met**" if not bad and ap_runs else "**missed**"])
    L.append(table(["target", "measured (anypush vs Nchan)", ""], trows))
    L.append("Why targets are missed, with evidence, is in [Analysis](#analysis).\n")

    # ---- plots
    pl = []
    with tempfile.TemporaryDirectory() as tmp:
        p = plot_latency(stream, plots, tmp)
        if p:
            pl.append(("Latency vs rate", p))
        p = plot_cpu_channels(stream, plots, tmp)
        if p:
            pl.append(("CPU per delivery vs channels", p))
        rows = []
        for tr in ["poll", "longpoll", "sse", "ws"]:
            rows.append((TR_LABEL[tr], {s: cpu(fanrun(s, tr)) for s in SERVERS}))
        p = bar_plot(rows, f"server CPU per delivery, {FAN_SUBS:,} subscribers, one channel (lower is better)",
                     "µs of server CPU per delivered message", plots / "cpu_per_delivery.png", tmp)
        if p:
            pl.append(("CPU per delivery", p))
        rows = [(TR_LABEL[tr], {s: (fanrun(s, tr) or {}).get("bytes_per_delivery") for s in SERVERS})
                for tr in ["poll", "longpoll", "sse", "ws"]]
        p = bar_plot(rows, "wire bytes per delivered 100 B message (subscriber side, both directions)",
                     "bytes per delivery", plots / "bytes_per_delivery.png", tmp)
        if p:
            pl.append(("Bytes per delivery", p))
        rows = [(TR_LABEL[tr], {s: (fanrun(s, tr) or {}).get("requests_per_delivery") for s in SERVERS})
                for tr in ["poll", "longpoll", "sse", "ws"]]
        p = bar_plot(rows, "HTTP requests per delivered message", "requests per delivery",
                     plots / "requests_per_delivery.png", tmp)
        if p:
            pl.append(("Requests per delivery", p))
        rows = []
        for n in (1000, 10000):
            for tr in ["longpoll", "sse", "ws"]:
                vals = {s: (idlerun(s, tr, n) or {}).get("mem_per_conn_bytes") for s in SERVERS}
                if any(v is not None for v in vals.values()):
                    rows.append((f"{TR_LABEL[tr]} x{n}", {k: (v / 1024 if v is not None else None) for k, v in vals.items()}))
        p = bar_plot(rows, "server memory per idle connection (VmRSS growth / connections)", "KiB per connection",
                     plots / "memory_per_connection.png", tmp)
        if p:
            pl.append(("Memory per connection", p))
    L.append("## Plots\n")
    for title, p in pl:
        L.append(f"![{title}]({rel(p)})\n")

    # ---- side by side
    L.append("## Side by side\n")
    L.append("Ratios are anypush divided by the peer: below 1 means anypush used less (CPU, bytes, "
             "memory, latency), above 1 means more.\n")
    for sc, title, subs in [(fan, "Fan-out", FAN_SUBS), (light, "Light load", LIGHT_SUBS)]:
        # the heading names the runs below it: same scenario and subscriber count
        ex = next((r for r in stream if r["scenario"] == sc and r["subs"] == subs), None)
        if ex is None:
            continue
        L.append(f"### {title}, {subs:,} subscribers on one channel ({ex['rate']:.0f} msg/s, {ex['count']} messages, "
                 f"{ex['size']} B, short-poll interval {ex['interval_ms']:.0f} ms)\n")
        sel = (lambda sc_, n_: (lambda srv, tr: find(stream, sc_, srv, tr, n_)))(sc, subs)
        for name, f, d in [("server CPU µs per delivery", cpu, 2), ("p50 latency, ms", lambda r: r["lat_p50_ms"], 2),
                           ("p99 latency, ms", lambda r: r["lat_p99_ms"], 2),
                           ("bytes per delivery", lambda r: r["bytes_per_delivery"], 0),
                           ("HTTP requests per delivery", lambda r: r["requests_per_delivery"], 3)]:
            rows = []
            for tr in TRS[:4]:
                vals = {s: sel(s, tr) for s in SERVERS}
                if not any(vals.values()):
                    continue
                mv = {s: (f(v) if v else None) for s, v in vals.items()}
                rows.append([TR_LABEL[tr]] + [fnum(mv[s], d) for s in SERVERS] + [ratio(mv["anypush"], mv[p]) for p in PEERS])
            L.append(f"**{name}**\n\n" + table(["transport"] + SERVERS + ["anypush/nchan", "anypush/socketio"], rows))
    for n in (1000, 10000):
        rows = []
        for tr in ["longpoll", "sse", "ws"]:
            mv = {s: (idlerun(s, tr, n) or {}).get("mem_per_conn_bytes") for s in SERVERS}
            if any(v is not None for v in mv.values()):
                rows.append([TR_LABEL[tr]] + [fnum(v / 1024 if v is not None else None, 1) for v in (mv[s] for s in SERVERS)] +
                            [ratio(mv["anypush"], mv[p]) for p in PEERS])
        if rows:
            L.append(f"### Memory per idle connection, {n:,} connections (KiB)\n\n" +
                     table(["transport"] + SERVERS + ["anypush/nchan", "anypush/socketio"], rows))

    # ---- the shapes
    rows = []
    for ch in SHAPE_CHANNELS:
        for paced in (True, False):
            for tr in ["sse", "ws"]:
                sc = f"shape{ch}" + ("" if paced else "-max")
                v = {s_: find(stream, sc, s_, tr, SHAPE_SUBS) for s_ in SERVERS}
                if not v["anypush"]:
                    continue
                c = {s_: cpu(r) if r else None for s_, r in v.items()}
                rows.append([f"{ch:,}", f"{SHAPE_SUBS // ch:,}", "500" if paced else "max", TR_LABEL[tr]]
                            + [fnum(c[s_], 2) for s_ in SERVERS] + [ratio(c["anypush"], c["nchan"])]
                            + [fnum(v[s_]["lat_p99_ms"], 2) if v[s_] else "–" for s_ in SERVERS]
                            + [fnum(v["anypush"]["deliveries_per_s"], 0),
                               f"{v['anypush']['lost']}/{v['anypush']['dup']}/{v['anypush']['ooo']}"])
    if rows:
        ex = next(r for r in stream if r["scenario"].startswith("shape"))
        L.append("## Many channels\n")
        L.append(f"The same {SHAPE_SUBS:,} subscribers spread over 1, 250 and 1,000 channels, {ex['count']:,} "
                 f"messages of {ex['size']} B in all, published round-robin over the channels at 500 msg/s "
                 "(`500`) or as fast as 4 publisher connections get answers (`max`): one channel is the "
                 "broadcast case, 1,000 channels of one subscriber each the per-user notification case. "
                 "Server CPU per delivery in µs; p99 latency in ms; msg/s `max` is the closed loop.\n")
        L.append(table(["channels", "subscribers per channel", "msg/s", "transport"]
                       + [f"{s_} µs" for s_ in SERVERS] + ["anypush/nchan"]
                       + [f"{s_} p99 ms" for s_ in SERVERS] + ["anypush deliv/s", "anypush lost/dup/ooo"], rows))

    # ---- all runs
    L.append("## Every run\n")
    L.append("`lost/dup/ooo` are summed over all subscribers; `gaps` counts gap signals received "
             "(anypush only; none is expected in these runs). A message not delivered by the end of the "
             "drain window (5 s after the last publish was acknowledged, 15 s for saturation runs) counts "
             "as lost. `drops` are connections the load generator "
             "cut on purpose (reconnect scenarios); the subscriber comes back at once with its cursor "
             "(`since=`/`Last-Event-ID` for anypush; `Last-Event-ID`, `last_event_id=` or "
             "`If-Modified-Since`+`If-None-Match` for Nchan). Socket.IO has no cursor: a reconnected client "
             "misses what was published while it was away, which is what its loss column shows. "
             "`lg cpu` is the load generator's own CPU use over the window. `open s` is the time taken to "
             "open every subscriber (256 connections opening at a time) before anything is published; "
             "`slow opens` counts subscribers whose first answer (welcome, `101`, first poll reply) came "
             "more than 1 s after their request was on the wire (long polls, answered only with data, are "
             "not counted).\n")
    rows = []
    for r in stream:
        rows.append([r["scenario"], r["server"], r["transport"], r["subs"], r["channels"],
                     "max" if r["rate"] == 0 else fnum(r["rate"], 0), r["size"], fnum(r["deliveries_per_s"], 0),
                     fnum(r["lat_p50_ms"], 2), fnum(r["lat_p99_ms"], 2), fnum(r["lat_max_ms"], 1),
                     f"{r['lost']}/{r['dup']}/{r['ooo']}/{r['gaps']}", r["drops"], fnum(cpu(r), 2), fnum(r["srv_cpu_pct"], 0),
                     fnum(r["bytes_per_delivery"], 0), fnum(r["requests_per_delivery"], 3),
                     fnum(r["srv_rss_kb"] / 1024, 1), fnum(r["lg_cpu_pct"], 0), fnum(r.get("open_s"), 1),
                     r.get("open_slow", "–")])
    L.append(table(["scenario", "server", "transport", "subs", "ch", "msg/s", "size", "deliv/s", "p50 ms",
                    "p99 ms", "max ms", "lost/dup/ooo/gaps", "drops", "srv µs/deliv", "srv cpu %", "B/deliv",
                    "req/deliv", "srv RSS MiB", "lg cpu %", "open s", "slow opens"], rows))
    if idle:
        rows = [[r["scenario"], r["server"], r["transport"], r["subs"], r["ready"], r["held_seen"],
                 fnum(r["rss_kb_before"] / 1024, 1), fnum(r["rss_kb_after"] / 1024, 1),
                 fnum(r["mem_per_conn_bytes"] / 1024, 2), fnum(r.get("open_s"), 1),
                 r.get("open_slow", "–"),
                 fnum(r["idle_srv_cpu_s"] * 1000, 1) if r.get("idle_window_s") else "–",
                 fnum(r["idle_window_s"], 1) if r.get("idle_window_s") else "–"] for r in idle]
        L.append("\n`idle CPU ms` is the server's CPU while it holds every connection and has nothing to "
                 "send, over the `window s` that ends before the first connection's 14th second of silence, "
                 "so that no heartbeat (15 s by default) falls in it.\n")
        L.append(table(["scenario", "server", "transport", "connections", "ready", "held (server)",
                        "RSS before MiB", "RSS after MiB", "KiB per connection", "open s",
                        "slow opens", "idle CPU ms", "window s"], rows))
    if redis_results.is_file():
        L.append("\n" + redis_section(redis_results))
    an = BENCH / "analysis.md"
    if an.exists():
        L.append("\n" + an.read_text())
    L.append("\n## Reproduce\n\n```sh\nbench/run --quick     # about 7 minutes; the report goes to bench/out/\n"
             "bench/run --full --docs  # under 60 minutes; rewrites this page\n"
             "bench/run redis --docs   # 2 to 5 minutes; rewrites the Redis section's results and this page\n"
             f"bench/report.py --docs docs/bench/{Path(a.results).name}  # rewrite this page from the committed results\n```\n\n"
             "One run by hand (the exact command of each run is in the JSON lines, `loadgen_cmd`):\n\n"
             "```sh\nsrc/anypush --bind 127.0.0.1 --port 8080 & \n"
             "bench/loadgen --server anypush --port 8080 --pid $! --transport sse --subs 1000 --rate 50 --count 150\n```\n")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(L))
    print(f"wrote {md_path} and {len(pl)} plots in {plots}", file=sys.stderr)


if __name__ == "__main__":
    main()
