#!/usr/bin/env python3
"""docs/benchmarks.md must be what bench/report.py makes of the committed
results, and every table must hold the runs its heading names.

1. The page names its results file and preset; that file is in docs/bench.
2. bench/report.py, run on that file into a temporary directory (with the
   committed plots kept, so no gnuplot is needed), writes the very page
   that is committed.
3. Independently of report.py's selection: each side-by-side heading names
   subscribers, rate, message count, size and poll interval; each cell of
   the tables under it equals the metric of the one run with exactly those
   parameters, for that server and transport. The same for the idle-memory
   tables (connections), the targets (subscribers, channels, rate,
   connections) and the 'Many channels' table (channels, pace).
4. The section of `bench/run redis`, when the page has one, names
   results-redis.jsonl (committed beside the other results) and the
   command that made it, and each row of its tables is the one run with
   the server, nodes, transport, subscribers, rate, messages and size its
   heading and row name.

Prints TAP. Reads files only: no network, no benchmark run."""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PAGE = TOP / "docs" / "benchmarks.md"
REPORT = TOP / "bench" / "report.py"
LABELS = {"short poll": "poll", "long poll": "longpoll", "SSE": "sse", "WebSocket": "ws"}

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {name}")
    if not cond:
        _failed += 1
        for line in (diag or "").splitlines()[:40]:
            print(f"# {line}")
    return cond


def load_report_module():
    """only for fnum, the number format the page uses"""
    spec = importlib.util.spec_from_file_location("report", REPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_runs(path):
    meta, runs = {}, []
    for line in path.read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            if "meta" in d:
                meta = d
            else:
                runs.append(d)
    return meta, runs


def cpu(r):
    return r.get("srv_sched_us_per_delivery") or r.get("srv_cpu_us_per_delivery")


# the side-by-side metrics: title on the page -> (value of a run, digits)
METRICS = {
    "server CPU µs per delivery": (cpu, 2),
    "p50 latency, ms": (lambda r: r["lat_p50_ms"], 2),
    "p99 latency, ms": (lambda r: r["lat_p99_ms"], 2),
    "bytes per delivery": (lambda r: r["bytes_per_delivery"], 0),
    "HTTP requests per delivery": (lambda r: r["requests_per_delivery"], 3),
}


def section(text, title):
    """the lines of a '## title' section"""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1).splitlines() if m else []


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables(lines):
    """[(heading, metric, header, rows)] for every table in the lines"""
    out, heading, metric, i = [], None, None, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            heading, metric = line[4:].strip(), None
        elif re.fullmatch(r"\*\*.+\*\*", line.strip()):
            metric = line.strip().strip("*")
        elif line.startswith("|"):
            header = cells(line)
            rows = []
            i += 2  # the |---| line
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            out.append((heading, metric, header, rows))
            continue
        i += 1
    return out


def unique(runs, what, **want):
    found = [r for r in runs if all(r.get(k) == v for k, v in want.items())]
    return (found[0], None) if len(found) == 1 else (None, f"{len(found)} runs match {what} {want}")


def check_side_by_side(text, stream, idle, fnum):
    head_re = re.compile(r"(\d[\d,]*) subscribers(?: on one channel)? \((\d+) msg/s, (\d+) messages, "
                         r"(\d+) B, short-poll interval (\d+) ms\)")
    mem_re = re.compile(r"Memory per idle connection, (\d[\d,]*) connections \(KiB\)")
    found = tables(section(text, "Side by side"))
    ok(len(found) > 0, "the side-by-side section has tables")
    for heading, metric, header, rows in found:
        bad = []
        if heading and mem_re.search(heading):
            n = int(mem_re.search(heading).group(1).replace(",", ""))
            for row in rows:
                for srv, cell in zip(header[1:4], row[1:4]):
                    run, why = unique(idle, "", server=srv, transport=LABELS[row[0]], subs=n)
                    want = fnum(run["mem_per_conn_bytes"] / 1024, 1) if run else "–"
                    if cell != want:
                        bad.append(f"{row[0]} {srv}: page {cell}, run of {n:,} connections {want} {why or ''}")
            ok(not bad, f"'{heading}': every cell is the run of {n:,} idle connections", "\n".join(bad))
            continue
        m = head_re.search(heading or "")
        if not ok(m is not None and metric in METRICS,
                  f"'{heading}' / '{metric}' names subscribers, rate, count, size, interval and a known metric"):
            continue
        subs, rate, count, size, interval = (int(g.replace(",", "")) for g in m.groups())
        value, digits = METRICS[metric]
        for row in rows:
            for srv, cell in zip(header[1:4], row[1:4]):
                run, why = unique(stream, "", server=srv, transport=LABELS[row[0]], subs=subs, channels=1,
                                  rate=float(rate), count=count, size=size, interval_ms=interval, drop_every_ms=0)
                want = fnum(value(run), digits) if run else "–"
                if cell != want:
                    bad.append(f"{row[0]} {srv}: page {cell}, run with {subs} subscribers {want} {why or ''}")
        ok(not bad, f"'{heading}' / '{metric}': every cell is the run the heading names", "\n".join(bad))


def check_targets(text, stream, idle, fnum):
    lines = section(text, "Targets")
    found = tables(lines)
    if not ok(len(found) == 1, "the targets section has one table"):
        return
    cpu_re = re.compile(r"server CPU per delivery at (\d[\d,]*) subscribers \((\d+) msg/s\) ≤ [\d.]+× Nchan, (.+)")
    lat_re = re.compile(r"p99 latency at light load \((\d[\d,]*) subscribers, (\d+) msg/s\) ≤ Nchan's, (.+)")
    mem_re = re.compile(r"memory per idle (.+) connection ≤ 5 KB( and ≤ [\d.]+× Nchan's)? \((\d[\d,]*) connections\)")
    shape_re = re.compile(r"server CPU per delivery, (\d[\d,]*) subscribers on (\d[\d,]*) channels? "
                          r"\((500 msg/s|closed loop)\) ≤ [\d.]+× Nchan, (.+)")
    big_re = re.compile(r"p99 latency at (\d[\d,]*) subscribers \((\d+) msg/s\) ≤ Nchan's, nothing lost, (.+)")
    idle_re = re.compile(r"an idle gateway holding (\d[\d,]*) (.+) connections uses no measurable CPU "
                         r"between heartbeats \(≤ [\d.]+ % of a core\)")
    for row in found[0][3]:
        target, measured = row[0], row[1]
        if target.startswith("zero loss"):
            ap = [r for r in stream if r["server"] == "anypush"]
            clean = [r for r in ap if r["lost"] == 0 and r["dup"] == 0 and r["ooo"] == 0 and r.get("bogus", 0) == 0]
            want = (f"{len(clean)}/{len(ap)} runs clean; lost {sum(r['lost'] for r in ap)}, "
                    f"dup {sum(r['dup'] for r in ap)}, ooo {sum(r['ooo'] for r in ap)}")
            ok(measured == want, f"target '{target}' counts every anypush run", f"page: {measured}\nruns: {want}")
            continue
        if cpu_re.fullmatch(target) or lat_re.fullmatch(target):
            is_cpu = bool(cpu_re.fullmatch(target))
            m = cpu_re.fullmatch(target) or lat_re.fullmatch(target)
            subs, rate, tr = int(m.group(1).replace(",", "")), float(m.group(2)), LABELS[m.group(3)]
            got, why = [], []
            for srv in ("anypush", "nchan"):
                run, w = unique(stream, "", server=srv, transport=tr, subs=subs, channels=1, rate=rate,
                                drop_every_ms=0, size=100)
                why.append(w or "")
                got.append(run)
            if None in got:
                ok(False, f"target '{target}' names one run per server", "\n".join(why))
                continue
            if is_cpu:
                want = f"{fnum(cpu(got[0]), 2)} µs vs {fnum(cpu(got[1]), 2)} µs"
            else:
                want = f"{fnum(got[0]['lat_p99_ms'], 2)} ms vs {fnum(got[1]['lat_p99_ms'], 2)} ms"
            ok(measured.startswith(want), f"target '{target}' holds the runs it names",
               f"page: {measured}\nruns: {want}")
            continue
        m = mem_re.fullmatch(target)
        if m:
            n = int(m.group(3).replace(",", ""))
            run, why = unique(idle, "", server="anypush", transport=LABELS[m.group(1)], subs=n)
            want = f"{run['mem_per_conn_bytes'] / 1000:.1f} KB" if run else why
            if run and m.group(2):
                peer, why = unique(idle, "", server="nchan", transport=LABELS[m.group(1)], subs=n)
                want = f"{want} vs {peer['mem_per_conn_bytes'] / 1000:.1f} KB" if peer else why
            ok(measured.startswith(want), f"target '{target}' holds the runs it names",
               f"page: {measured}\nruns: {want}")
            continue
        m = shape_re.fullmatch(target)
        if m:
            subs, ch = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
            rate, tr = (500.0 if m.group(3) == "500 msg/s" else 0.0), LABELS[m.group(4)]
            # the shape runs by name: at one channel, a closed-loop shape and
            # fanout-saturate have the same subscribers, channels and rate
            sc = f"shape{ch}" + ("" if rate else "-max")
            got = [unique(stream, "", scenario=sc, server=srv, transport=tr, subs=subs, channels=ch, rate=rate,
                          drop_every_ms=0, size=100) for srv in ("anypush", "nchan")]
            if not ok(all(r for r, _ in got), f"target '{target}' names one run per server",
                      "\n".join(w or "" for _, w in got)):
                continue
            want = f"{fnum(cpu(got[0][0]), 2)} µs vs {fnum(cpu(got[1][0]), 2)} µs"
            ok(measured.startswith(want), f"target '{target}' holds the runs it names",
               f"page: {measured}\nruns: {want}")
            continue
        m = big_re.fullmatch(target)
        if m:
            subs, rate, tr = int(m.group(1).replace(",", "")), float(m.group(2)), LABELS[m.group(3)]
            got = [unique(stream, "", server=srv, transport=tr, subs=subs, channels=1, rate=rate,
                          drop_every_ms=0, size=100) for srv in ("anypush", "nchan")]
            if not ok(all(r for r, _ in got), f"target '{target}' names one run per server",
                      "\n".join(w or "" for _, w in got)):
                continue
            a_, n_ = got[0][0], got[1][0]
            want = (f"{fnum(a_['lat_p99_ms'], 2)} ms vs {fnum(n_['lat_p99_ms'], 2)} ms; "
                    f"anypush lost {fnum(a_['lost'])}")
            ok(measured == want, f"target '{target}' holds the runs it names", f"page: {measured}\nruns: {want}")
            continue
        m = idle_re.fullmatch(target)
        if m:
            n = int(m.group(1).replace(",", ""))
            run, why = unique(idle, "", server="anypush", transport=LABELS[m.group(2)], subs=n)
            want = (f"{run['idle_srv_cpu_s'] * 1000:.1f} ms in {run['idle_window_s']:.1f} s"
                    if run and run.get("idle_window_s") else why or "no idle window in the run")
            ok(measured.startswith(want), f"target '{target}' holds the run it names",
               f"page: {measured}\nruns: {want}")
            continue
        ok(False, f"target '{target}' names the runs it measures (subscribers, rate or connections)",
           "the test knows no such target: name its runs in the row, and teach the test")


def check_shapes(text, stream, fnum):
    """'Many channels': each row is the run of its channel count, pace and
    transport, for each server column"""
    lines = section(text, "Many channels")
    if not lines:
        ok(not any(r.get("scenario", "").startswith("shape") for r in stream),
           "the results have no shape runs, so the page has no 'Many channels' section")
        return
    found = tables(lines)
    if not ok(len(found) == 1, "the 'Many channels' section has one table"):
        return
    _, _, header, rows = found[0]
    bad = []
    for row in rows:
        cell = dict(zip(header, row))
        ch = int(cell["channels"].replace(",", ""))
        rate = 0.0 if cell["msg/s"] == "max" else float(cell["msg/s"])
        tr = LABELS[cell["transport"]]
        for srv in ("anypush", "nchan", "socketio"):
            run, why = unique(stream, "", scenario=f"shape{ch}" + ("" if rate else "-max"), server=srv,
                              transport=tr, subs=ch * int(cell["subscribers per channel"].replace(",", "")),
                              channels=ch, rate=rate, drop_every_ms=0, size=100)
            for col, want in ((f"{srv} µs", fnum(cpu(run), 2) if run else "–"),
                              (f"{srv} p99 ms", fnum(run["lat_p99_ms"], 2) if run else "–")):
                if cell.get(col) != want:
                    bad.append(f"{ch} channels {cell['msg/s']} {tr} {col}: page {cell.get(col)}, run {want} "
                               f"{why or ''}")
    ok(len(rows) > 0 and not bad, "'Many channels': every cell is the run of its channels, pace and transport",
       "\n".join(bad))


def check_redis(text, fnum):
    lines = section(text, "Several nodes on one Redis")
    if not lines:
        ok(not (TOP / "docs" / "bench" / "results-redis.jsonl").exists(),
           "results-redis.jsonl is committed, so the page has its section")
        return
    body = "\n".join(lines)
    m = re.search(r"from `(results-redis\.jsonl)`", body)
    path = TOP / "docs" / "bench" / "results-redis.jsonl"
    if not ok(m is not None and path.is_file(), "the Redis section names its committed results file"):
        return
    meta, runs = load_runs(path)
    ok(meta.get("preset") == "redis", "results-redis.jsonl is the redis preset")
    ok(f"```sh\n{meta.get('command')}\n```" in body, "the Redis section shows the command that made its results")
    ok(str(meta.get("meta", {}).get("date")) in body, "the Redis section shows the date of its run")
    head_re = re.compile(r"(\d[\d,]*) subscribers on one channel, (.+?) \((?:(\d+) msg/s|publishes as fast [^,]+), "
                         r"(\d+) messages, (\d+) B\)")
    found = [t for t in tables(lines) if t[0] and head_re.search(t[0])]
    ok(len(found) > 0, "the Redis section has run tables")
    for heading, _, header, rows in found:
        hm = head_re.search(heading)
        subs, tr = int(hm.group(1).replace(",", "")), LABELS[hm.group(2)]
        rate = float(hm.group(3)) if hm.group(3) else 0.0
        count, size = int(hm.group(4)), int(hm.group(5))
        bad = []
        for row in rows:
            cell = dict(zip(header, row))
            run, why = unique(runs, "", mode="stream", server=cell["server"], nodes=int(cell["nodes"]),
                              transport=tr, subs=subs, rate=rate, count=count, size=size)
            if run is None:
                bad.append(why)
                continue
            want = {"deliv/s": fnum(run["deliveries_per_s"], 0), "p99 ms": fnum(run["lat_p99_ms"], 2),
                    "lost/dup/ooo": f"{run['lost']}/{run['dup']}/{run['ooo']}",
                    "Redis calls/publish": fnum(run["redis"]["calls_per_publish"], 1)}
            for k, v in want.items():
                if cell.get(k) != v:
                    bad.append(f"{cell['server']} x{cell['nodes']} {k}: page {cell.get(k)}, run {v}")
        ok(not bad, f"'{heading}': every row is the run it names", "\n".join(bad))


def main():
    text = PAGE.read_text()
    m = re.search(r"Generated by `bench/report.py` from `(results-[a-z]+\.jsonl)` \((\w+) preset\)", text)
    if not ok(m is not None, "docs/benchmarks.md names its results file and preset"):
        print(f"1..{_n}")
        return 1
    results = TOP / "docs" / "bench" / m.group(1)
    if not ok(results.is_file(), f"docs/bench/{m.group(1)} is committed"):
        print(f"1..{_n}")
        return 1
    meta, runs = load_runs(results)
    ok(meta.get("preset") == m.group(2), f"{results.name} is the {m.group(2)} preset",
       f"its meta says {meta.get('preset')!r}")
    ok(f"```sh\n{meta.get('command')}\n```" in text, "the page shows the command that made the results")

    with tempfile.TemporaryDirectory(prefix="anypush-report-") as tmp:
        md = Path(tmp) / "docs" / "benchmarks.md"
        plots = Path(tmp) / "docs" / "bench"
        plots.mkdir(parents=True)
        for png in (TOP / "docs" / "bench").glob("*.png"):
            shutil.copy(png, plots)
        r = subprocess.run([sys.executable, str(REPORT), str(results), "--md", str(md), "--plots", str(plots),
                            "--keep-plots"], capture_output=True, text=True, timeout=120)
        again = md.read_text() if md.exists() else ""
        diff = ""
        if again != text:
            d = subprocess.run(["diff", str(PAGE), str(md)], capture_output=True, text=True, timeout=30)
            diff = d.stdout
        ok(r.returncode == 0 and again == text,
           f"bench/report.py {results.name} writes the committed docs/benchmarks.md",
           f"report.py exit {r.returncode}: {r.stderr.strip()}\n{diff}")

    fnum = load_report_module().fnum
    stream = [r for r in runs if r.get("mode") != "idle"]
    idle = [r for r in runs if r.get("mode") == "idle"]
    check_side_by_side(text, stream, idle, fnum)
    check_targets(text, stream, idle, fnum)
    check_shapes(text, stream, fnum)
    check_redis(text, fnum)
    print(f"1..{_n}")
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
