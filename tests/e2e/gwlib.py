"""gwlib: a small stdlib-only library for anypush end-to-end tests.

It starts the real gateway binary on an ephemeral loopback port, speaks the
four subscribe transports (poll, longpoll, sse, ws) as plain asyncio clients,
and prints TAP.  Everything is bounded in time: every network wait has a
timeout, every test has a deadline, and a watchdog ends the script before the
60 s budget of one test file, killing any gateway it started.

Environment: ANYPUSH_BIN (the binary; default ../../src/anypush from here),
ANYPUSH_WEB (the web/ folder for the static-file test), TMPDIR (gateway logs
go to $TMPDIR/anypush-e2e/SCRIPT.PID.NN-TEST.SEQ.log; the tail of the logs of a
failed test is printed as TAP diagnostics).

Typical script:

    from gwlib import *

    async def test_something():
        "what it checks"
        with Gateway("--history-size", "10") as gw:
            st, body = publish(gw, "c", {"x": 1})
            expect_eq(st, 201, "publish status")

    if __name__ == "__main__":
        run([test_something])
"""

import asyncio
import base64
import hashlib
import http.client
import inspect
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl as _sslmod
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from pathlib import Path

__all__ = [
    "HERE", "REPO", "Gateway", "Skip", "plan", "ok", "diag", "skip", "todo", "run", "scenario",
    "check", "expect_eq", "expect_error", "ids_problem", "summarize_ids",
    "request", "get", "publish", "info", "metrics", "metric_sum", "Publisher", "publish_until",
    "AsyncHTTP", "raw_exchange", "parse_response", "parse_status", "wait_until", "open_stream",
    "read_head", "Sub", "PollClient", "LongPollClient", "SSEClient",
    "WSClient", "make_client", "TRANSPORTS", "ws_frame", "payload",
    "MuxClient", "rss_kb", "composite", "EPOCH_RE", "parse_cursor", "msg_cursor",
    "cursor_id", "cursor_epoch", "epochs_problem", "Endpoint", "insecure_tls",
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPT = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "gwlib"

TRANSPORTS = ("poll", "longpoll", "sse", "ws")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 20000 if hard == resource.RLIM_INFINITY else min(hard, 20000)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass


_raise_fd_limit()


def binary_path():
    env = os.environ.get("ANYPUSH_BIN")
    if env:
        return env
    return str(HERE / ".." / ".." / "src" / "anypush")


def log_dir():
    d = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "anypush-e2e"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------------------
# TAP

class Skip(Exception):
    """Raised by a test to report `ok N - name # SKIP reason`."""


class _Timeout(Exception):
    pass


class _State:
    n = 0
    planned = None
    failed = 0
    todo = 0
    test_name = "setup"
    test_index = 0
    gateways = []   # every Gateway ever started, in order
    clients = []    # live clients/connections of the running test
    budget_end = None


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def plan(n):
    _State.planned = n
    _out(f"1..{n}")


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        _out("# " + line)


def _clean_name(name):
    return re.sub(r"\s+", " ", str(name).replace("#", "no.")).strip()


def ok(cond, name, diagnostic=None):
    """Print one TAP test point; return cond."""
    _State.n += 1
    name = _clean_name(name)
    if cond:
        _out(f"ok {_State.n} - {name}")
    else:
        _State.failed += 1
        _out(f"not ok {_State.n} - {name}")
        if diagnostic:
            diag(diagnostic)
    return bool(cond)


def skip(reason):
    raise Skip(reason)


def todo(reason):
    """Decorator: a known, accepted failure.  The test still runs; a failure
    prints `not ok N - name # TODO reason` (TAP does not count it), a pass
    prints `ok N - name # TODO reason` (an unexpected pass, worth a look)."""
    def mark(fn):
        fn.tap_todo = reason
        return fn
    return mark


def check(cond, msg):
    """Assert with a message; the message becomes the TAP diagnostic."""
    if not cond:
        raise AssertionError(msg)


def expect_eq(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 600:
            g = g[:600] + "..."
        if len(w) > 600:
            w = w[:600] + "..."
        raise AssertionError(f"{what}: got {g}, want {w}")


def summarize_ids(ids, limit=12):
    """Compress a list of ints into ranges: '1..50, 52, 54..60'."""
    parts = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and isinstance(ids[j], int) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}..{ids[j]}")
        i = j + 1
    if len(parts) > limit:
        parts = parts[: limit // 2] + ["..."] + parts[-limit // 2:]
    return "[" + ", ".join(parts) + f"] ({len(ids)} ids)"


def ids_problem(ids, expected):
    """None if ids == expected, else a short explanation of the difference."""
    if ids == expected:
        return None
    got, want = set(ids), set(expected)
    out = [f"got {summarize_ids(ids)}, want {summarize_ids(expected)}"]
    missing = sorted(want - got)
    if missing:
        out.append(f"missing {summarize_ids(missing)}")
    extra = sorted(got - want)
    if extra:
        out.append(f"unexpected {summarize_ids(extra)}")
    if len(ids) != len(got):
        seen, dups = set(), []
        for x in ids:
            if x in seen:
                dups.append(x)
            seen.add(x)
        out.append(f"duplicates {summarize_ids(dups)}")
    for k in range(1, len(ids)):
        if not (isinstance(ids[k], int) and isinstance(ids[k - 1], int)) or ids[k] <= ids[k - 1]:
            out.append(f"out of order at position {k}: {ids[k - 1]} then {ids[k]}")
            break
    return "; ".join(out)


# ---------------------------------------------------------------------------
# cursors and epochs

EPOCH_RE = re.compile(r"[0-9a-z]{1,13}")
_ID_RE = re.compile(r"[0-9]{1,20}")


def parse_cursor(text, count=None):
    """A cursor as the gateway takes and hands it out, split per channel
    into (epoch or None, id): "k3x9a2bq:17,4" -> [("k3x9a2bq", 17), (None, 4)].
    ValueError unless every element is ID or EPOCH:ID as the gateway
    parses them (and, with count, there are exactly count elements)."""
    if not isinstance(text, str):
        raise ValueError(f"cursor {text!r} is not a string")
    out = []
    for part in text.split(","):
        epoch, sep, mid = part.partition(":")
        if not sep:
            epoch, mid = None, part
        elif not (EPOCH_RE.fullmatch(epoch) and 0 < int(epoch, 36) < 2 ** 64):
            raise ValueError(f"cursor {text!r}: bad epoch {epoch!r}")
        if not (_ID_RE.fullmatch(mid) and int(mid) < 2 ** 64):
            raise ValueError(f"cursor {text!r}: bad id {mid!r}")
        out.append((epoch, int(mid)))
    if count is not None and len(out) != count:
        raise ValueError(f"cursor {text!r}: {len(out)} elements, want {count}")
    return out


def cursor_id(text):
    """The id of a one-channel cursor ("k3x9a2bq:17" -> 17)."""
    return parse_cursor(text, 1)[0][1]


def cursor_epoch(text):
    """The epoch of a one-channel cursor ("k3x9a2bq:17" -> "k3x9a2bq"; None if plain)."""
    return parse_cursor(text, 1)[0][0]


def msg_cursor(m):
    """The per-channel cursor right after message m: "EPOCH:ID"."""
    return f"{m.get('epoch')}:{m.get('id')}"


def epochs_problem(messages, want=None):
    """None if, per channel, every message carries one and the same
    well-formed epoch (and it is `want`, an epoch or {channel: epoch}, when
    given); else a short explanation."""
    seen = {}
    for m in messages:
        es = seen.setdefault(m.get("channel"), [])
        if not es or es[-1] != m.get("epoch"):
            es.append(m.get("epoch"))
    out = []
    for ch, es in seen.items():
        if len(es) != 1:
            out.append(f"{ch}: the epoch changes within the run: {es[:6]}")
        bad = [e for e in es if not (isinstance(e, str) and EPOCH_RE.fullmatch(e))]
        if bad:
            out.append(f"{ch}: malformed epochs {bad[:3]}")
        w = want.get(ch) if isinstance(want, dict) else want
        if w is not None and any(e != w for e in es):
            out.append(f"{ch}: epochs {es[:6]}, want {w!r}")
    return "; ".join(out) or None


def _test_name(fn):
    doc = inspect.getdoc(fn)
    if doc:
        return doc.splitlines()[0]
    return fn.__name__.removeprefix("test_").replace("_", " ")


def _abort_clients():
    for c in list(_State.clients):
        try:
            c.abort()
        except Exception:
            pass
    _State.clients.clear()


def _kill_gateways(since=0):
    for gw in _State.gateways[since:]:
        gw._kill_quietly()


def _watchdog(signum, frame):
    diag(f"watchdog: script budget exceeded in test '{_State.test_name}'")
    _kill_gateways()
    planned = _State.planned or _State.n
    while _State.n < planned:
        ok(False, "not run: script time budget exceeded")
    sys.stdout.flush()
    os._exit(1)


def scenario(fn):
    """Decorator for an async function whose result several test points
    read: the first point that awaits it runs it, the others get the same
    result (or fail with the same error), so that every point can also run
    alone (ANYPUSH_TESTS, see run()) instead of reading what an earlier
    point left behind."""
    state = {}

    async def once():
        if "error" in state:
            raise AssertionError(f"the scenario {fn.__name__} failed: {state['error']}")
        if "result" not in state:
            try:
                state["result"] = await fn()
            except BaseException as e:  # a timeout cancels it: not run twice
                state["error"] = f"{type(e).__name__}: {e}"
                raise
        return state["result"]

    once.__name__ = fn.__name__
    return once


def _selected(tests):
    """The tests ANYPUSH_TESTS names (comma-separated parts of a test's
    function name or TAP name); all when it is unset."""
    want = [w.strip() for w in os.environ.get("ANYPUSH_TESTS", "").split(",") if w.strip()]
    if not want:
        return tests
    return [t for t in tests if any(w in t.__name__ or w in _test_name(t) for w in want)]


def run(tests, *, budget=55.0, timeout=25.0):
    """Run each test function as one TAP test point, all in one event loop.

    A test is an `async def` (or plain function) without arguments; it passes
    unless it raises.  `Skip` gives a SKIP.  Each test gets at most `timeout`
    seconds and the whole script at most `budget`; a SIGALRM watchdog a few
    seconds later ends a script that is stuck in blocking code.  On failure
    the tail of every gateway log of that test is printed.  ANYPUSH_TESTS=a,b
    runs only the tests whose name contains a or b.  A gateway of the
    test that died on its own, or whose log has a sanitizer report (ASan,
    LSan, UBSan, TSan), fails the test, even one marked @todo.
    """
    t_start = time.monotonic()
    _State.budget_end = t_start + budget
    tests = _selected(tests)
    plan(len(tests))
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(int(budget) + 3)

    binary = binary_path()
    if not os.access(binary, os.X_OK):
        diag(f"anypush binary not found or not executable: {binary}")
        for t in tests:
            ok(False, _test_name(t), "no gateway binary (set ANYPUSH_BIN)")
        signal.alarm(0)
        return 1

    async def main():
        for i, fn in enumerate(tests, 1):
            name = _test_name(fn)
            _State.test_name = name
            _State.test_index = i
            remaining = _State.budget_end - time.monotonic()
            if remaining < 1.0:
                ok(False, name, "not run: script time budget exhausted")
                continue
            first_gw = len(_State.gateways)
            t0 = time.monotonic()
            err = None
            skipped = None
            tmo = min(timeout, remaining)
            try:
                res = fn()
                if inspect.isawaitable(res):
                    task = asyncio.ensure_future(res)
                    done, _ = await asyncio.wait({task}, timeout=tmo)
                    if not done:
                        where = io.StringIO()
                        task.print_stack(limit=6, file=where)
                        task.cancel()
                        await asyncio.wait({task}, timeout=5)
                        raise _Timeout(f"test timed out after {tmo:.1f} s, waiting in:\n{where.getvalue()}")
                    task.result()
            except Skip as e:
                skipped = str(e) or "skipped"
            except _Timeout as e:
                err = str(e)
            except Exception as e:  # noqa: BLE001 - report everything
                tb = "".join(traceback.format_tb(e.__traceback__, limit=-3))
                err = f"{type(e).__name__}: {e}\n{tb}"
            finally:
                _abort_clients()
            # A gateway of this test that died on its own is a failure too.
            for gw in _State.gateways[first_gw:]:
                if gw.crashed():
                    err = (err or "") + f"\ngateway {gw.pid} died during the test ({gw.exit_text()})"
            _kill_gateways(first_gw)
            # and so is a sanitizer report in its log, however it ended (a
            # report need not end the process, and a killed one says nothing
            # through its exit status)
            sanitized = False
            for gw in _State.gateways[first_gw:]:
                rep = gw.sanitizer_report()
                if rep:
                    sanitized = True
                    err = (err or "") + f"\ngateway {gw.pid}: sanitizer report in {gw.log_path}:\n{rep}"
            dt = time.monotonic() - t0
            # a known failure is no excuse for a memory error: not a TODO then
            todo_reason = None if sanitized else getattr(fn, "tap_todo", None)
            if skipped is not None:
                _State.n += 1
                _out(f"ok {_State.n} - {_clean_name(name)} # SKIP {skipped}")
            elif todo_reason:
                _State.n += 1
                _out(f"{'ok' if err is None else 'not ok'} {_State.n} - {_clean_name(name)} "
                     f"# TODO {_clean_name(todo_reason)}")
                if err is not None:
                    _State.todo += 1
                    diag(f"after {dt:.2f} s: {err.rstrip()}")
            elif err is None:
                ok(True, name)
            else:
                ok(False, name, f"after {dt:.2f} s: {err.rstrip()}")
                for gw in _State.gateways[first_gw:]:
                    diag(f"--- gateway log {gw.log_path} (tail) ---")
                    diag(gw.log_tail())
            # let cancelled tasks unwind before the next test
            await asyncio.sleep(0)

    try:
        asyncio.run(main())
    finally:
        signal.alarm(0)
        _kill_gateways()
    diag(f"{SCRIPT}: {_State.n - _State.failed - _State.todo} passed, {_State.failed} failed, "
         f"{_State.todo} known failures (TODO), "
         f"{time.monotonic() - t_start:.1f} s")
    return 0


# ---------------------------------------------------------------------------
# the gateway process

class Gateway:
    """The anypush binary on 127.0.0.1 with an ephemeral port.

    Started at construction; use as a context manager so that it is stopped.
    stop() sends SIGTERM, waits up to 10 s, then SIGKILLs, and by default
    asserts exit status 0 after SIGTERM and no sanitizer report in the log.

    threads=N passes --threads N (the event loops); without it, and without
    --threads among the arguments, ANYPUSH_TEST_THREADS (if set) does, so
    that any test script can be run on several loops:
    ANYPUSH_TEST_THREADS=3 python3 tests/e2e/t_mux.py
    """

    _seq = 0

    def __init__(self, *extra_args, check_exit=True, name=None, threads=None):
        self.extra = [str(a) for a in extra_args]
        if threads is None and "--threads" not in self.extra:
            threads = os.environ.get("ANYPUSH_TEST_THREADS") or None
        if threads is not None:
            self.extra += ["--threads", str(threads)]
        self.check_exit = check_exit
        self.name = name
        self.proc = None
        self.port = None
        self.pid = None
        self.log_path = None
        self.killed = False
        self.stop_seconds = None
        self.crash_rc = None
        self._stopping = False
        self.start()

    # -- process control
    def start(self, port=0):
        Gateway._seq += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.name or _State.test_name).strip("-")[:40]
        if self.log_path is None:  # a restart keeps appending to the same log
            self.log_path = (log_dir() / f"{SCRIPT}.{os.getpid()}.{_State.test_index:02d}-{slug}."
                             f"{Gateway._seq}.log")
        self._dir = tempfile.mkdtemp(prefix="gw-", dir=log_dir())
        port_file = os.path.join(self._dir, "port")
        # no config file but the test's own: a machine with
        # /etc/anypush/anypush.conf must not change what a test sees
        own = [] if "--config" in self.extra else ["--config", ""]
        args = [binary_path(), "--bind", "127.0.0.1", "--port", str(port),
                "--port-file", port_file, "--log-level", "warn", *own, *self.extra]
        self.args = args
        with open(self.log_path, "ab") as logf:
            logf.write(("$ " + " ".join(args) + "\n").encode())
            logf.flush()
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=str(REPO))
        self.pid = self.proc.pid
        self.killed = False
        self._stopping = False
        self.stop_seconds = None
        if self not in _State.gateways:
            _State.gateways.append(self)
        deadline = time.monotonic() + 10.0
        seen = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"gateway exited during startup with status {rc}:\n{self.log_tail()}")
            try:
                with open(port_file) as f:
                    txt = f.read()
                m = re.fullmatch(r"\s*(\d+)\s*", txt)
                if m and 0 < int(m.group(1)) < 65536:
                    if seen == txt:  # the same twice: not caught mid-write
                        self.port = int(m.group(1))
                        break
                    seen = txt
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                self._kill_quietly()
                raise RuntimeError(f"gateway did not write its port file within 10 s:\n{self.log_tail()}")
            time.sleep(0.01)
        return self

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def crashed(self):
        """True if the process ended without being asked to (crash, exit)."""
        if self.crash_rc is not None:
            return True
        return self.proc is not None and not self._stopping and self.proc.poll() is not None

    def exit_text(self):
        rc = self.proc.returncode if self.proc is not None else None
        if rc is None:
            return "running"
        return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"

    def signal(self, sig=signal.SIGTERM):
        self._stopping = True
        self._term_sent = time.monotonic()
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10.0):
        """Wait for the process to end; return its status or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, check=None, timeout=10.0):
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        if check is None:
            check = self.check_exit
        if self.proc is None:
            return None
        died_on_its_own = not self._stopping and self.proc.poll() is not None
        if died_on_its_own:
            self.crash_rc = self.proc.returncode
        t0 = time.monotonic()
        if self.proc.poll() is None:
            if not self._stopping:
                self.signal(signal.SIGTERM)
            else:
                t0 = getattr(self, "_term_sent", t0)
            try:
                self.proc.wait(max(0.1, timeout - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(5)
        self._stopping = True
        self.stop_seconds = time.monotonic() - t0
        shutil.rmtree(self._dir, ignore_errors=True)
        rc = self.proc.returncode
        if check:
            if died_on_its_own:
                raise AssertionError(f"gateway had already died on its own ({self.exit_text()})")
            if self.killed:
                raise AssertionError(f"gateway did not exit within {timeout:.0f} s of SIGTERM (killed)")
            if rc != 0:
                raise AssertionError(f"gateway after SIGTERM: {self.exit_text()}, want exit status 0")
            rep = self.sanitizer_report()
            if rep:
                raise AssertionError(f"gateway exited 0 but its log has a sanitizer report:\n{rep}")
        return rc

    def restart(self, same_port=True, tries=5):
        """Stop (asserting a clean exit) and start again, on the same port by
        default.  A loaded machine may not have released the port yet when
        the new process binds it: a start that fails is tried again, up to
        `tries` times within about 10 s."""
        port = self.port
        self.stop()
        if not same_port:
            return self.start(port=0)
        deadline = time.monotonic() + 10.0
        for attempt in range(1, tries + 1):
            try:
                return self.start(port=port)
            except RuntimeError:
                if attempt == tries or time.monotonic() > deadline:
                    raise
                diag(f"restart on port {port}: attempt {attempt} failed, trying again")
                time.sleep(0.2 * attempt)

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self._stopping = True
            try:
                self.proc.kill()
                self.proc.wait(5)
            except Exception:
                pass
        if self.proc is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # what a sanitizer writes when it finds something (ASan, LSan, UBSan,
    # TSan); a build without sanitizers never prints these
    SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                              r"WARNING: ThreadSanitizer|SUMMARY: (Address|Leak|UndefinedBehavior|Thread)Sanitizer")

    def sanitizer_report(self, lines=12):
        """The first lines of a sanitizer report in this gateway's log
        (from its first sanitizer line on), or None if there is none."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        m = self.SANITIZER_RE.search(text)
        if not m:
            return None
        start = text.rfind("\n", 0, m.start()) + 1
        return "\n".join(text[start:].splitlines()[:lines])

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()[-20000:]
            return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.stop(check=False, timeout=3.0)
        return False


# ---------------------------------------------------------------------------
# blocking HTTP helpers (http.client)

_AUTO = object()


def _port(gw):
    return gw if isinstance(gw, int) else gw.port


def _ssl(gw):
    """The client TLS context to reach gw with (an Endpoint's), else None."""
    return getattr(gw, "ssl", None)


class Endpoint:
    """Something in front of a gateway (a TLS-terminating proxy on
    127.0.0.1:port): every client and helper here takes it where it takes
    a Gateway, and speaks TLS with ssl (an SSLContext) when given."""

    def __init__(self, port, ssl=None):
        self.port = port
        self.ssl = ssl


def insecure_tls():
    """A client TLS context that accepts any certificate: for tests only,
    against the self-signed certificate of a proxy on loopback."""
    ctx = _sslmod.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = _sslmod.CERT_NONE
    return ctx


def _http_connection(gw, timeout):
    if _ssl(gw) is not None:
        return http.client.HTTPSConnection("127.0.0.1", _port(gw), timeout=timeout, context=_ssl(gw))
    return http.client.HTTPConnection("127.0.0.1", _port(gw), timeout=timeout)


def request(gw, method, path, body=None, headers=None, timeout=5.0):
    """One request on a fresh connection: (status, headers-lowercased, body bytes)."""
    conn = _http_connection(gw, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        return r.status, hdrs, data
    finally:
        conn.close()


def get(gw, path, headers=None, timeout=5.0):
    return request(gw, "GET", path, headers=headers, timeout=timeout)


def _publish_parts(ch, data, content_type, event, client, exclude_sender):
    if content_type is _AUTO:
        if isinstance(data, (bytes, bytearray)):
            content_type = "application/octet-stream"
        elif isinstance(data, str):
            content_type = "text/plain; charset=utf-8"
        else:
            content_type = "application/json"
    if isinstance(data, (bytes, bytearray)):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode("utf-8")
    else:
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    q = []
    if event is not None:
        q.append(("event", event))
    if exclude_sender:
        q.append(("exclude_sender", "1"))
    path = f"/channels/{ch}" + ("?" + urllib.parse.urlencode(q) if q else "")
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if client is not None:
        headers["X-Client-Id"] = client
    return path, body, headers


def _decode_json(body):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body


def publish(gw, ch, data, content_type=_AUTO, event=None, client=None,
            exclude_sender=False, timeout=5.0):
    """POST /channels/{ch}. data: bytes -> octet-stream, str -> text/plain,
    anything else -> JSON.  content_type=None sends no Content-Type.
    Returns (status, parsed JSON body or raw bytes)."""
    path, body, headers = _publish_parts(ch, data, content_type, event, client, exclude_sender)
    st, _, resp = request(gw, "POST", path, body=body, headers=headers, timeout=timeout)
    return st, _decode_json(resp)


def info(gw, ch, headers=None):
    st, _, body = get(gw, f"/channels/{ch}/info", headers=headers)
    check(st == 200, f"GET /channels/{ch}/info: status {st}: {body[:300]!r}")
    return json.loads(body)


def metrics(gw):
    """Parse /metrics (Prometheus text) into {'name{labels}': float}."""
    st, _, body = get(gw, "/metrics")
    check(st == 200, f"GET /metrics: status {st}")
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def metric_sum(mets, name):
    """Sum of every series of metric `name` (any labels); None if absent."""
    vals = [v for k, v in mets.items() if k == name or k.startswith(name + "{")]
    return sum(vals) if vals else None


def expect_error(resp, status, code=None, what="request"):
    """resp = (status, headers, body) from request()/get(). Checks the status
    and the error body {"error":{"code":...,"message":...}}; returns the code."""
    st, hdrs, body = resp
    check(st == status, f"{what}: status {st}, want {status}; body {body[:300]!r}")
    try:
        j = json.loads(body)
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {body[:300]!r}")
    check(isinstance(j, dict) and isinstance(j.get("error"), dict),
          f"{what}: error body lacks an 'error' object: {j!r}")
    e = j["error"]
    check(isinstance(e.get("code"), str) and e["code"], f"{what}: error.code missing: {j!r}")
    check(isinstance(e.get("message"), str), f"{what}: error.message missing: {j!r}")
    ctype = hdrs.get("content-type", "")
    check(ctype.split(";")[0].strip().lower() == "application/json",
          f"{what}: error Content-Type {ctype!r}, want application/json")
    if code is not None:
        check(e["code"] == code, f"{what}: error code {e['code']!r}, want {code!r}")
    return e["code"]


class Publisher:
    """Publishes over one keep-alive connection (blocking; use the a* methods
    from async code, they run in a worker thread)."""

    def __init__(self, gw, timeout=5.0):
        self.port = _port(gw)
        self.timeout = timeout
        self.conn = _http_connection(gw, timeout)
        self.sent = 0
        self.epochs = {}    # channel -> the epoch of the last 201 reply

    def publish(self, ch, data, content_type=_AUTO, event=None, client=None, exclude_sender=False):
        path, body, headers = _publish_parts(ch, data, content_type, event, client, exclude_sender)
        self.conn.request("POST", path, body=body, headers=headers)
        r = self.conn.getresponse()
        resp = r.read()
        self.sent += 1
        return r.status, _decode_json(resp)

    def publish_many(self, ch, items, interval=0.0, deadline=30.0, **kw):
        """Publish items in order; each must get 201. Returns the acked ids.
        interval > 0 paces the publishes on an absolute schedule."""
        ids = []
        t0 = time.monotonic()
        for i, item in enumerate(items):
            if interval:
                delay = t0 + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if time.monotonic() - t0 > deadline:
                raise AssertionError(f"publishing took longer than {deadline} s (at item {i})")
            before = self.epochs.get(ch) if i else None
            st, body = self.publish(ch, item, **kw)
            if st != 201:
                raise AssertionError(f"publish #{i + 1} to {ch}: status {st}: {body!r}")
            ids.append(body.get("id") if isinstance(body, dict) else None)
            e = body.get("epoch") if isinstance(body, dict) else None
            if not (isinstance(e, str) and EPOCH_RE.fullmatch(e)):
                raise AssertionError(f"publish #{i + 1} to {ch}: reply without an epoch: {body!r}")
            if before is not None and e != before:
                raise AssertionError(f"publish #{i + 1} to {ch}: epoch {e!r} after {before!r} "
                                     f"within one run of publishes")
            self.epochs[ch] = e
        return ids

    async def apublish(self, ch, data, **kw):
        return await asyncio.to_thread(self.publish, ch, data, **kw)

    async def apublish_many(self, ch, items, interval=0.0, **kw):
        return await asyncio.to_thread(self.publish_many, ch, items, interval, **kw)

    def close(self):
        self.conn.close()


async def publish_until(gw, ch, pred, size=16000, limit=24 << 20, batch=32):
    """Publish text messages of `size` bytes to ch, `batch` at a time over
    one keep-alive connection, until pred() holds (say, a reader that
    stopped reading is now stuck behind full socket buffers, or was cut);
    AssertionError once `limit` bytes did not do it. Returns the bytes
    published.  Needs --max-message >= size."""
    pub = Publisher(gw)
    sent = 0
    try:
        while not pred():
            check(sent < limit, f"published {sent} bytes to {ch} and the condition still does not hold")
            await pub.apublish_many(ch, ["x" * size] * batch)
            sent += size * batch
    finally:
        pub.close()
    return sent


def payload(i, size=0):
    """A recognisable JSON payload for message i (with non-ASCII text)."""
    p = {"n": i, "s": "héllo ☃ " + str(i)}
    if size:
        p["pad"] = "x" * max(0, size - 40)
    return p


# ---------------------------------------------------------------------------
# asyncio HTTP plumbing

async def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() (sync or async) until true; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if inspect.isawaitable(r):
            r = await r
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def open_stream(port, timeout=5.0, rcvbuf=None, ssl=None):
    """asyncio (reader, writer) to 127.0.0.1:port; rcvbuf shrinks SO_RCVBUF;
    ssl (an SSLContext) speaks TLS."""
    if rcvbuf is None:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ssl), timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
    except BaseException:
        sock.close()
        raise
    if ssl is None:
        return await asyncio.open_connection(sock=sock)
    return await asyncio.wait_for(asyncio.open_connection(sock=sock, ssl=ssl, server_hostname="127.0.0.1"),
                                  timeout)


class Head:
    def __init__(self, version, status, reason, headers, raw):
        self.version, self.status, self.reason, self.headers, self.raw = version, status, reason, headers, raw

    def __repr__(self):
        return f"<{self.version} {self.status} {self.reason} {self.headers}>"


def _parse_head(raw):
    text = raw.decode("iso-8859-1")
    lines = text.split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError(f"bad HTTP status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise AssertionError(f"bad HTTP header line: {line!r}")
        k, v = line.split(":", 1)
        k, v = k.strip().lower(), v.strip()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return Head(m.group(1), int(m.group(2)), m.group(3) or "", headers, raw)


async def read_head(reader, timeout=5.0):
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    return _parse_head(raw)


class BodyReader:
    """Reads an HTTP/1.1 response body piecewise: chunked, Content-Length or
    close-delimited.  .complete tells whether it ended properly (last chunk
    or full length); .ended whether it ended at all."""

    def __init__(self, reader, head, method="GET"):
        self.r = reader
        h = head.headers
        self.chunked = "chunked" in h.get("transfer-encoding", "").lower()
        self.left = None
        if not self.chunked and "content-length" in h:
            self.left = int(h["content-length"])
        if method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
            self.left = 0
            self.chunked = False
        self._chunk_left = 0
        self.complete = False
        self.ended = False

    async def read(self):
        """Next piece of body, or b'' at the end."""
        if self.ended:
            return b""
        try:
            if self.chunked:
                return await self._read_chunked()
            if self.left is not None:
                if self.left == 0:
                    self.complete = self.ended = True
                    return b""
                data = await self.r.read(min(self.left, 65536))
                if not data:
                    self.ended = True
                    return b""
                self.left -= len(data)
                return data
            data = await self.r.read(65536)
            if not data:
                self.complete = self.ended = True
            return data
        except (asyncio.IncompleteReadError, ConnectionError):
            self.ended = True
            raise

    async def _read_chunked(self):
        if self._chunk_left == 0:
            line = await self.r.readuntil(b"\r\n")
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise AssertionError(f"bad chunk size line {line!r}")
            if size == 0:
                while True:  # trailers
                    t = await self.r.readuntil(b"\r\n")
                    if t == b"\r\n":
                        break
                self.complete = self.ended = True
                return b""
            self._chunk_left = size
        data = await self.r.read(min(self._chunk_left, 65536))
        if not data:
            raise asyncio.IncompleteReadError(b"", self._chunk_left)
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            crlf = await self.r.readexactly(2)
            if crlf != b"\r\n":
                raise AssertionError(f"chunk not followed by CRLF: {crlf!r}")
        return data

    async def read_all(self, limit=64 * 1024 * 1024):
        parts = []
        n = 0
        while True:
            d = await self.read()
            if not d:
                return b"".join(parts)
            parts.append(d)
            n += len(d)
            if n > limit:
                raise AssertionError("response body too large")


class Response:
    def __init__(self, status, headers, body, version="HTTP/1.1"):
        self.status, self.headers, self.body, self.version = status, headers, body, version

    def json(self):
        return json.loads(self.body)

    def __iter__(self):  # allows: st, hdrs, body = resp
        return iter((self.status, self.headers, self.body))


def _http_request_bytes(method, path, port, headers=None, body=None):
    hdrs = {"Host": f"127.0.0.1:{port}"}
    for k, v in (headers or {}).items():
        hdrs[k] = v
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + (body or b"")


class AsyncHTTP:
    """HTTP/1.1 client over one keep-alive asyncio connection."""

    def __init__(self, gw, timeout=10.0):
        self.port = _port(gw)
        self.ssl = _ssl(gw)
        self.timeout = timeout
        self.reader = self.writer = None
        self.connects = 0
        _State.clients.append(self)

    async def _connect(self):
        self.reader, self.writer = await open_stream(self.port, self.timeout, ssl=self.ssl)
        self.connects += 1

    async def request(self, method, path, headers=None, body=None, timeout=None):
        timeout = timeout or self.timeout
        for attempt in (0, 1):
            fresh = self.writer is None
            if fresh:
                await self._connect()
            try:
                self.writer.write(_http_request_bytes(method, path, self.port, headers, body))
                await asyncio.wait_for(self.writer.drain(), timeout)
                head = await read_head(self.reader, timeout)
                data = await asyncio.wait_for(BodyReader(self.reader, head, method).read_all(), timeout)
            except asyncio.IncompleteReadError as e:
                self.close()
                # An idle keep-alive connection the server had closed: retry a GET once.
                if fresh or method != "GET" or e.partial:
                    raise ConnectionError(f"connection closed before a complete response ({len(e.partial)} bytes)")
                continue
            except ConnectionError:
                self.close()
                if fresh or method != "GET":
                    raise
                continue
            conn_hdr = head.headers.get("connection", "").lower()
            if "close" in conn_hdr or head.version == "HTTP/1.0":
                self.close()
            return Response(head.status, head.headers, data, head.version)
        raise ConnectionError("unreachable")

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def abort(self):
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


def parse_response(data):
    """The first HTTP response in data (bytes, e.g. from raw_exchange with
    stop_after_head=False) as a Response: headers lowercased, a chunked
    or Content-Length body decoded (what arrived of it)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    check(sep, f"no complete response head in {data[:200]!r}")
    h = _parse_head(head + sep)
    if "chunked" in h.headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2:]
        rest = bytes(body)
    elif "content-length" in h.headers:
        rest = rest[:int(h.headers["content-length"])]
    return Response(h.status, h.headers, rest, h.version)


def parse_status(data):
    """Status code of the first HTTP response line in data, or None."""
    m = re.match(rb"HTTP/\d\.\d (\d{3})", data or b"")
    return int(m.group(1)) if m else None


async def raw_exchange(gw, chunks, read_timeout=3.0, stop_after_head=True, rcvbuf=None):
    """Send raw bytes (a bytes or a list of bytes/float pauses) on a fresh
    connection and read until EOF or read_timeout.  Returns
    (received bytes, how) with how in {'eof', 'reset', 'timeout', 'head'};
    'head' means a complete response head arrived (and stop_after_head)."""
    reader, writer = await open_stream(_port(gw), 5.0, rcvbuf, _ssl(gw))
    if isinstance(chunks, (bytes, bytearray)):
        chunks = [chunks]
    got = bytearray()
    how = "timeout"
    try:
        for c in chunks:
            if isinstance(c, (int, float)):
                await asyncio.sleep(c)
                continue
            writer.write(c)
            try:
                await asyncio.wait_for(writer.drain(), 2.0)
            except (ConnectionError, asyncio.TimeoutError):
                break
        deadline = time.monotonic() + read_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                d = await asyncio.wait_for(reader.read(65536), left)
            except asyncio.TimeoutError:
                break
            except ConnectionError:
                how = "reset"
                break
            if not d:
                how = "eof"
                break
            got += d
            if stop_after_head and b"\r\n\r\n" in got:
                how = "head"
                break
    finally:
        writer.transport.abort()
    return bytes(got), how


# ---------------------------------------------------------------------------
# subscribers

class Sub:
    """Common part of the four subscriber clients.

    .messages  message dicts in arrival order ({'id','event','data',...})
    .gaps      gap signals; .events: ('message'|'gap', obj) in arrival order
    .cursor    the resume cursor after the last processed message
    .problems  contract deviations noticed while parsing
    .end_reason why the stream ended (None while running)
    """

    kind = "?"

    def path(self):
        """/channels/CH with the transport (the kind), cursor, client id and
        extra query, or the explicit path given (streaming clients)."""
        if self._path:
            return self._path
        q = [("transport", self.kind)]
        if self.since is not None:
            q.append(("since", self.since))
        if self.client_id:
            q.append(("client", self.client_id))
        q += self.extra_query
        return f"/channels/{self.ch}?" + urllib.parse.urlencode(q, safe=",")

    def __init__(self, gw, ch, since=None, client=None):
        self.port = _port(gw)
        self.ssl = _ssl(gw)
        self.ch = ch
        self.channels = ch.split(",")
        self.since = None if since is None else str(since)
        self.cursor = self.since
        self.epochs = {}       # channel -> the epoch its cursor is of, as far as known
        self.client_id = client
        self.messages = []
        self.gaps = []
        self.events = []
        self.problems = []
        self.welcome = None
        self.end_reason = None
        self.error = None
        self.status = None
        self.ended_at = None
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = None
        self._writer = None
        _State.clients.append(self)

    # -- lifecycle
    async def start(self, timeout=5.0):
        """Connect and wait until subscribed (welcome or first poll reply)."""
        self._learn(self.cursor)
        self._task = asyncio.create_task(self._guarded())
        waiters = [asyncio.create_task(self._ready.wait()), asyncio.create_task(self._done.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if not self._ready.is_set():
            raise AssertionError(f"{self.kind} client on {self.ch} not subscribed within {timeout} s: "
                                 f"{self.describe()}")
        return self

    async def _guarded(self):
        try:
            await self._run()
            if self.end_reason is None:
                self.end_reason = "finished"
        except asyncio.CancelledError:
            if self.end_reason is None:
                self.end_reason = "cancelled"
            raise
        except asyncio.IncompleteReadError:
            self.end_reason = self.end_reason or "eof"
        except ConnectionResetError as e:
            self.end_reason = "reset"
            self.error = e
        except Exception as e:  # noqa: BLE001
            self.end_reason = self.end_reason or f"error: {type(e).__name__}: {e}"
            self.error = e
        finally:
            self.ended_at = time.monotonic()
            self._done.set()
            self._changed.set()

    @property
    def done(self):
        return self._done.is_set()

    def abort(self):
        """Close the connection abruptly (no goodbye) and stop the task."""
        if self._writer is not None:
            try:
                self._writer.transport.abort()
            except Exception:
                pass
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.end_reason is None:
            self.end_reason = "aborted"

    async def wait_done(self, timeout):
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.kind} client on {self.ch} did not end within {timeout} s: "
                                 f"{self.describe()}")

    # -- recording
    def _note(self):
        self._changed.set()

    def _add_message(self, m):
        self.messages.append(m)
        self.events.append(("message", m))
        self._changed.set()

    def _add_gap(self, g):
        self.gaps.append(g)
        self.events.append(("gap", g))
        self._changed.set()

    def _advance(self, channel, mid, epoch):
        """Move channel's element of the cursor to EPOCH:ID (ID if no epoch)."""
        elem = f"{epoch}:{mid}" if epoch is not None else str(mid)
        if len(self.channels) == 1:
            self.cursor = elem
            return
        parts = (self.cursor or ",".join("0" * len(self.channels))).split(",")
        if channel in self.channels and len(parts) == len(self.channels):
            parts[self.channels.index(channel)] = elem
            self.cursor = ",".join(parts)

    def _learn(self, cursor):
        """Note the epochs a cursor (given, or handed out) names per channel."""
        try:
            parts = parse_cursor(cursor, len(self.channels))
        except ValueError:
            return
        for ch, (epoch, _) in zip(self.channels, parts):
            if epoch is not None:
                self.epochs[ch] = epoch

    def _epoch_of_message(self, m, what="message"):
        """Within one incarnation the epoch never changes: a message of
        another epoch than the cursor's must come after a gap naming it."""
        if not isinstance(m, dict):
            return
        ch, e = m.get("channel"), m.get("epoch")
        known = self.epochs.get(ch)
        if known is not None and e != known:
            self.problems.append(f"{what} {ch}/{m.get('id')} has epoch {e!r}, the cursor is of "
                                 f"{known!r} and no gap came between")
        if isinstance(e, str):
            self.epochs[ch] = e

    def _epoch_of_gap(self, g):
        """A gap names the epoch its cursor belongs to: from here on, that one."""
        _check_gap(self, g)
        if isinstance(g, dict) and isinstance(g.get("epoch"), str):
            self.epochs[g.get("channel")] = g["epoch"]

    def ids(self):
        return [m.get("id") for m in self.messages]

    def describe(self):
        return (f"{self.kind} ch={self.ch} status={self.status} end={self.end_reason} "
                f"msgs={summarize_ids(self.ids())} gaps={len(self.gaps)} cursor={self.cursor} "
                f"epochs={dict(list(self.epochs.items())[:4])} "
                f"problems={self.problems[:3]}")

    # -- waiting
    async def wait_for(self, pred, timeout, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return
            if self._done.is_set():
                raise AssertionError(f"{self.kind} client ended before {what}: {self.describe()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.kind} client: timed out after {timeout} s waiting for "
                                     f"{what}: {self.describe()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_count(self, n, timeout):
        await self.wait_for(lambda: len(self.messages) >= n, timeout, f"{n} messages")

    async def wait_id(self, mid, timeout):
        await self.wait_for(lambda: any(m.get("id") == mid for m in self.messages[-50:]) or
                            (self.messages and isinstance(self.messages[-1].get("id"), int)
                             and self.messages[-1]["id"] >= mid),
                            timeout, f"message id {mid}")


def _check_message(sub, m):
    """Shape of a message envelope (every transport carries the same one)."""
    if not isinstance(m, dict):
        sub.problems.append(f"message is not an object: {m!r}")
        return
    for k in ("type", "channel", "id", "epoch", "event", "data", "ts"):
        if k not in m:
            sub.problems.append(f"message lacks {k!r}: {str(m)[:200]}")
    if m.get("type") != "message":
        sub.problems.append(f"message type {m.get('type')!r}")
    if not isinstance(m.get("id"), int) or isinstance(m.get("id"), bool):
        sub.problems.append(f"message id not an integer: {m.get('id')!r}")
    e = m.get("epoch")
    if not (isinstance(e, str) and EPOCH_RE.fullmatch(e)):
        sub.problems.append(f"message epoch {e!r} is not 1-13 of [0-9a-z]")
    keys = list(m)
    if "epoch" in keys and "id" in keys and keys.index("epoch") + 1 != keys.index("id"):
        sub.problems.append(f"envelope: epoch is not just before id: {keys}")
    if m.get("channel") not in sub.channels:
        sub.problems.append(f"message channel {m.get('channel')!r} not subscribed")


def _check_gap(sub, g):
    """Shape of a gap object: {channel, last_seen, cursor, epoch}."""
    if not isinstance(g, dict):
        sub.problems.append(f"gap is not an object: {g!r}")
        return
    for k in ("channel", "last_seen", "cursor", "epoch"):
        if k not in g:
            sub.problems.append(f"gap lacks {k!r}: {str(g)[:200]}")
    for k in ("last_seen", "cursor"):
        if k in g and (not isinstance(g[k], int) or isinstance(g[k], bool)):
            sub.problems.append(f"gap {k} not an integer: {g[k]!r}")
    e = g.get("epoch")
    if not (isinstance(e, str) and EPOCH_RE.fullmatch(e)):
        sub.problems.append(f"gap epoch {e!r} is not 1-13 of [0-9a-z]")
    if g.get("channel") not in sub.channels:
        sub.problems.append(f"gap channel {g.get('channel')!r} not subscribed")


class PollClient(Sub):
    """Short polling: GET ?transport=poll&since=CURSOR, then wait `interval`
    after each reply (at once when the reply says more:true)."""

    kind = "poll"
    transport = "poll"

    def __init__(self, gw, ch, since=None, client=None, interval=0.05, req_timeout=10.0, extra_query=None):
        super().__init__(gw, ch, since, client)
        self.interval = interval
        self.req_timeout = req_timeout
        self.extra_query = list(extra_query or [])
        self.replies = []       # (monotonic time, status) of every reply
        self.requests = 0
        self.in_flight = False  # a request is out and not yet answered
        self.last_response = None
        self.http = None

    def _query(self):
        q = [("transport", self.transport)]
        if self.cursor is not None:
            q.append(("since", self.cursor))
        if self.client_id:
            q.append(("client", self.client_id))
        return q + self.extra_query

    def path(self):
        return f"/channels/{self.ch}?" + urllib.parse.urlencode(self._query(), safe=",")

    def abort(self):
        if self.http is not None:
            self.http.abort()
        super().abort()

    async def _run(self):
        self.http = AsyncHTTP(Endpoint(self.port, self.ssl), self.req_timeout)
        first = True
        while True:
            self.requests += 1
            path = self.path()
            if first and self.cursor is None and self.transport == "longpoll":
                # learn the tail cursor with one short poll, so that "subscribed"
                # has a definite meaning before anything is published
                path = path.replace("transport=longpoll", "transport=poll", 1)
            first = False
            self.in_flight = True
            try:
                resp = await self.http.request("GET", path, timeout=self.req_timeout)
            finally:
                self.in_flight = False
            self._writer = self.http.writer
            self.replies.append((time.monotonic(), resp.status))
            self.last_response = resp
            self.status = resp.status
            if resp.status != 200:
                self.end_reason = f"HTTP {resp.status}: {resp.body[:200]!r}"
                return
            try:
                j = json.loads(resp.body)
            except ValueError:
                self.problems.append(f"reply not JSON: {resp.body[:200]!r}")
                self.end_reason = "bad reply"
                return
            cid = resp.headers.get("x-client-id")
            if not cid:
                self.problems.append("reply without X-Client-Id")
            elif self.client_id is None:
                self.client_id = cid
            if not isinstance(j.get("messages"), list) or not isinstance(j.get("next"), str):
                self.problems.append(f"reply lacks messages/next: {str(j)[:200]}")
                self.end_reason = "bad reply"
                return
            if j.get("gap"):
                self._add_gap({"since": self.cursor, **{k: v for k, v in j.items() if k != "messages"}})
                if not (isinstance(j.get("gaps"), list) and j["gaps"]):
                    self.problems.append(f"gap:true without gaps: {str(j)[:200]}")
            for g in j.get("gaps") or []:
                self._epoch_of_gap(g)
            for m in j["messages"]:
                _check_message(self, m)
                self._epoch_of_message(m)
                self._add_message(m)
                if isinstance(m, dict):
                    self._advance(m.get("channel"), m.get("id"), m.get("epoch"))
            self._check_next(j)
            self.cursor = j["next"]
            self._learn(j["next"])
            self._ready.set()
            self._note()
            if not j.get("more"):
                await self._pause()

    def _check_next(self, j):
        """next: an EPOCH:ID per channel; at a channel's last message of the
        reply where it had one, else in the epoch its cursor is of."""
        try:
            parts = parse_cursor(j["next"], len(self.channels))
        except ValueError as e:
            self.problems.append(f"next: {e}")
            return
        for ch, (epoch, mid) in zip(self.channels, parts):
            if epoch is None:
                self.problems.append(f"next {j['next']!r} has no epoch for {ch}")
            mine = [m for m in j["messages"] if isinstance(m, dict) and m.get("channel") == ch]
            if mine and f"{epoch}:{mid}" != msg_cursor(mine[-1]):
                self.problems.append(f"next {j['next']!r}: {ch} at {epoch}:{mid}, but its last message "
                                     f"is {msg_cursor(mine[-1])}")
            elif not mine and self.epochs.get(ch) not in (None, epoch):
                self.problems.append(f"next {j['next']!r}: {ch} in epoch {epoch!r}, its cursor is of "
                                     f"{self.epochs[ch]!r} and no gap came")

    async def _pause(self):
        if self.interval:
            await asyncio.sleep(self.interval)


class LongPollClient(PollClient):
    """Long polling: ?transport=longpoll&timeout=N, re-asks at once."""

    kind = "longpoll"
    transport = "longpoll"

    def __init__(self, gw, ch, since=None, client=None, timeout=10, extra_query=None):
        super().__init__(gw, ch, since, client, interval=0, req_timeout=(timeout or 25) + 5.0,
                         extra_query=extra_query)
        self.lp_timeout = timeout

    def _query(self):
        q = super()._query()
        if self.lp_timeout is not None:
            q.insert(1, ("timeout", str(self.lp_timeout)))
        return q


_SSE_EOL = re.compile(rb"\r\n|\r|\n")


def _sse_lines(buf):
    """Split complete lines (CRLF, LF or CR) off buf: (lines, rest)."""
    lines = []
    start = 0
    for m in _SSE_EOL.finditer(buf):
        if m.end() == len(buf) and m.group() == b"\r":
            break  # maybe CRLF split across reads
        lines.append(buf[start:m.start()])
        start = m.end()
    return lines, buf[start:]


class SSEClient(Sub):
    """text/event-stream over a raw asyncio connection (chunked decoding).

    last_event_id sends a Last-Event-ID header; since goes in the query.
    After the stream: .clean_end tells whether the body ended properly
    (last chunk), .end_reason is 'eof', 'reset', ...
    """

    kind = "sse"

    def __init__(self, gw, ch, since=None, last_event_id=None, client=None, headers=None,
                 rcvbuf=None, extra_query=None, path=None):
        super().__init__(gw, ch, since, client)
        self.last_event_id = None if last_event_id is None else str(last_event_id)
        if self.last_event_id is not None:
            self.cursor = self.last_event_id
        self.headers = dict(headers or {})
        self.rcvbuf = rcvbuf
        self.extra_query = list(extra_query or [])
        self._path = path
        self.head = None
        self.first_line = None
        self.retry = None
        self.comments = []
        self.raw_events = []   # (event, id, data) for everything dispatched
        self.clean_end = False
        self._gate = asyncio.Event()
        self._gate.set()

    def pause(self):
        """Stop reading from the socket (a client that never reads)."""
        self._gate.clear()
        if self._writer is not None:
            self._writer.transport.pause_reading()

    def resume(self):
        if self._writer is not None:
            self._writer.transport.resume_reading()
        self._gate.set()

    async def _run(self):
        reader, writer = await open_stream(self.port, 5.0, self.rcvbuf, self.ssl)
        self._writer = writer
        hdrs = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            hdrs["Last-Event-ID"] = self.last_event_id
        hdrs.update(self.headers)
        writer.write(_http_request_bytes("GET", self.path(), self.port, hdrs))
        await writer.drain()
        self.head = head = await read_head(reader, 10.0)
        self.status = head.status
        body = BodyReader(reader, head)
        if head.status != 200:
            self.error_body = await asyncio.wait_for(body.read_all(), 5.0)
            self.end_reason = f"HTTP {head.status}: {self.error_body[:200]!r}"
            return
        ctype = head.headers.get("content-type", "")
        if ctype.split(";")[0].strip() != "text/event-stream":
            self.problems.append(f"Content-Type {ctype!r}")
        buf = b""
        ev = {"event": "", "data": [], "id": None}
        last_id = self.last_event_id
        while True:
            if not self._gate.is_set():
                await self._gate.wait()
            try:
                piece = await body.read()
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                self.end_reason = "reset" if isinstance(e, ConnectionResetError) else "eof (truncated)"
                return
            if not piece:
                self.clean_end = body.complete
                self.end_reason = "eof" if body.complete else "eof (truncated)"
                return
            buf += piece
            lines, buf = _sse_lines(buf)
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if self.first_line is None:
                    self.first_line = line
                if line == "":
                    last_id = self._dispatch(ev, last_id)
                    ev = {"event": "", "data": [], "id": None}
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    self._note()
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "event":
                    ev["event"] = value
                elif field == "data":
                    ev["data"].append(value)
                elif field == "id":
                    if "\0" not in value:
                        ev["id"] = value
                elif field == "retry":
                    if value.isdigit():
                        self.retry = int(value)
                else:
                    self.problems.append(f"unknown SSE field {field!r}")

    def _check_id_line(self, cur, obj, what):
        """The id: line is the whole cursor after the event: this channel's
        element is EPOCH:ID of the message (or the gap's epoch:cursor)."""
        if what == "gap":
            want = f"{obj.get('epoch')}:{obj.get('cursor')}" if isinstance(obj, dict) else None
        else:
            want = msg_cursor(obj)
        ch = obj.get("channel") if isinstance(obj, dict) else None
        try:
            parts = parse_cursor(cur, len(self.channels))
        except ValueError as e:
            self.problems.append(f"{what} id: line: {e}")
            return
        if ch in self.channels:
            e, mid = parts[self.channels.index(ch)]
            if f"{e}:{mid}" != want:
                self.problems.append(f"id: {cur!r} but the {what} says {want!r} for {ch}")
        if any(e is None for e, _ in parts):
            self.problems.append(f"{what} id: {cur!r} has an element without an epoch")

    def _dispatch(self, ev, last_id):
        if ev["id"] is not None:
            last_id = ev["id"]
        if not ev["data"]:
            # an id-only block moves Last-Event-ID without an event
            if ev["id"] is not None:
                self.cursor = last_id
                self._note()
            return last_id
        name = ev["event"] or "message"
        data_txt = "\n".join(ev["data"])
        self.raw_events.append((name, ev["id"], data_txt))
        try:
            data = json.loads(data_txt)
        except ValueError:
            self.problems.append(f"event {name!r} data not JSON: {data_txt[:200]!r}")
            data = data_txt
        if name == "welcome":
            self.welcome = data
            if isinstance(data, dict):
                self.client_id = data.get("client", self.client_id)
                if data.get("cursor") is not None:
                    self.cursor = str(data["cursor"])
                if ev["id"] != data.get("cursor"):
                    self.problems.append(f"welcome id: {ev['id']!r} but data.cursor {data.get('cursor')!r}")
            if ev["id"] is not None:
                self.cursor = ev["id"]
            self._learn(self.cursor)
            self._ready.set()
        elif name == "gap":
            self._epoch_of_gap(data)
            if ev["id"] is not None:
                self.cursor = ev["id"]
                self._check_id_line(ev["id"], data, "gap")
            self._add_gap(data)
        elif name == "ping":
            # the heartbeat as an event (EventSource never shows comments)
            self.pings = getattr(self, "pings", 0) + 1
        else:
            if ev["id"] is None:
                self.problems.append(f"message event without id: {data_txt[:100]!r}")
            cur = ev["id"] if ev["id"] is not None else last_id
            self.cursor = cur
            # data is the full envelope, the same object ws and poll carry
            if not (isinstance(data, dict) and data.get("type") == "message"):
                self.problems.append(f"event data is not a message envelope: {data_txt[:100]!r}")
                data = {"id": None, "event": name, "data": data}
            if data.get("event") != name:
                self.problems.append(f"event: {name!r} but envelope says {data.get('event')!r}")
            if cur is not None:
                self._check_id_line(cur, data, "message")
            if data.get("type") == "message":
                _check_message(self, data)
                self._epoch_of_message(data)
            msg = dict(data)
            msg["cursor"] = cur
            self._add_message(msg)
        self._note()
        return last_id


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
    """Encode one WebSocket frame (client frames are masked by default)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = mask_key or os.urandom(4)
    return hdr + key + _mask(payload, key)


def _mask(data, key):
    if not data:
        return b""
    k = int.from_bytes((key * (len(data) // 4 + 1))[: len(data)], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(len(data), "big")


class WSClient(Sub):
    """A minimal RFC 6455 client on asyncio streams.

    Records .close_code/.close_reason of a server close frame, .eof,
    .app_pings ({"type":"ping"} frames), .binaries, .others (other JSON frames).
    """

    kind = "ws"

    def __init__(self, gw, ch=None, since=None, client=None, path=None, protocols=("anypush.v1",),
                 headers=None, rcvbuf=None, extra_query=None, auto_pong=True):
        super().__init__(gw, ch or "", since, client)
        self._path = path
        self.protocols = protocols
        self.headers = dict(headers or {})
        self.rcvbuf = rcvbuf
        self.extra_query = list(extra_query or [])
        self.auto_pong = auto_pong
        self.head = None
        self.subprotocol = None
        self.close_code = None
        self.close_reason = None
        self.eof = False
        self.app_pings = 0
        self.pings = []
        self.pongs = []
        self.binaries = []
        self.texts = []
        self.others = []
        self._close_sent = False
        self._reader = None
        self._gate = asyncio.Event()
        self._gate.set()

    async def connect(self, timeout=5.0):
        """Handshake only. Returns the response head; raises unless 101."""
        reader, writer = await open_stream(self.port, timeout, self.rcvbuf, self.ssl)
        self._reader, self._writer = reader, writer
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13"}
        if self.protocols:
            hdrs["Sec-WebSocket-Protocol"] = ", ".join(self.protocols)
        hdrs.update(self.headers)
        writer.write(_http_request_bytes("GET", self.path(), self.port, hdrs))
        await writer.drain()
        self.head = head = await read_head(reader, timeout)
        self.status = head.status
        if head.status != 101:
            try:
                self.error_body = await asyncio.wait_for(BodyReader(reader, head).read_all(), timeout)
            except Exception:
                self.error_body = b""
            self.end_reason = f"HTTP {head.status}"
            raise AssertionError(f"ws handshake to {self.path()}: status {head.status}: "
                                 f"{self.error_body[:300]!r}")
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if head.headers.get("sec-websocket-accept") != want:
            self.problems.append(f"bad Sec-WebSocket-Accept {head.headers.get('sec-websocket-accept')!r}")
        if "websocket" not in head.headers.get("upgrade", "").lower():
            self.problems.append(f"101 without Upgrade: websocket ({head.headers.get('upgrade')!r})")
        self.subprotocol = head.headers.get("sec-websocket-protocol")
        if self.protocols and self.subprotocol not in self.protocols:
            self.problems.append(f"subprotocol {self.subprotocol!r} not among {self.protocols}")
        if not self.protocols and self.subprotocol:
            self.problems.append(f"subprotocol {self.subprotocol!r} chosen though none was asked")
        return head

    async def start(self, timeout=5.0, wait_welcome=True):
        if self._reader is None:
            await self.connect(timeout)
        if not wait_welcome:
            self._task = asyncio.create_task(self._guarded())
            return self
        return await super().start(timeout)

    def pause(self):
        self._gate.clear()
        if self._writer is not None:
            self._writer.transport.pause_reading()

    def resume(self):
        if self._writer is not None:
            self._writer.transport.resume_reading()
        self._gate.set()

    # -- sending
    async def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self._writer.write(ws_frame(opcode, payload, fin, mask, rsv))
        await asyncio.wait_for(self._writer.drain(), 5.0)

    async def send_raw(self, data):
        self._writer.write(data)
        await asyncio.wait_for(self._writer.drain(), 5.0)

    async def send_text(self, text):
        await self.send_frame(0x1, text.encode("utf-8") if isinstance(text, str) else text)

    async def send_json(self, obj):
        await self.send_text(json.dumps(obj))

    async def send_binary(self, data):
        await self.send_frame(0x2, data)

    async def send_close(self, code=1000, reason=""):
        self._close_sent = True
        await self.send_frame(0x8, struct.pack("!H", code) + reason.encode())

    async def close(self, code=1000, timeout=3.0):
        """Polite close: send a close frame and wait for the server's."""
        if not self.done:
            try:
                await self.send_close(code)
                await asyncio.wait_for(self._done.wait(), timeout)
            except (ConnectionError, asyncio.TimeoutError):
                pass
        self.abort()

    async def wait_closed(self, timeout=3.0):
        """Wait until the server closes the connection (close frame or EOF)."""
        await self.wait_done(timeout)

    # -- receiving
    async def _run(self):
        r = self._reader
        frag_op, frag = None, []
        while True:
            if not self._gate.is_set():
                await self._gate.wait()
            try:
                hdr = await r.readexactly(2)
            except asyncio.IncompleteReadError:
                self.eof = True
                if self.end_reason is None:
                    self.end_reason = "eof" if self.close_code is None else "close"
                return
            b0, b1 = hdr
            fin, rsv, op = b0 & 0x80, (b0 >> 4) & 7, b0 & 0xF
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await r.readexactly(8))[0]
            key = await r.readexactly(4) if b1 & 0x80 else None
            if key is not None:
                self.problems.append("server frame is masked")
            if rsv:
                self.problems.append(f"server frame has RSV bits {rsv}")
            if n > 64 * 1024 * 1024:
                self.problems.append(f"server frame of {n} bytes")
                self.end_reason = "giant frame"
                return
            data = await r.readexactly(n)
            if key is not None:
                data = _mask(data, key)
            if op >= 0x8:
                if not fin or n > 125:
                    self.problems.append(f"bad control frame op={op} fin={bool(fin)} len={n}")
                if op == 0x8:
                    self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    self.close_reason = data[2:].decode("utf-8", "replace")
                    self.end_reason = "close"
                    self._note()
                    if not self._close_sent:
                        try:
                            await self.send_close(self.close_code if self.close_code not in (1005, 1006) else 1000)
                        except Exception:
                            pass
                    try:  # the server closes TCP after the close handshake
                        d = await asyncio.wait_for(r.read(65536), 2.0)
                        while d:
                            d = await asyncio.wait_for(r.read(65536), 2.0)
                        self.eof = True
                    except (asyncio.TimeoutError, ConnectionError):
                        pass
                    return
                if op == 0x9:
                    self.pings.append(data)
                    if self.auto_pong:
                        try:
                            await self.send_frame(0xA, data)
                        except Exception:
                            pass
                elif op == 0xA:
                    self.pongs.append(data)
                else:
                    self.problems.append(f"reserved control opcode {op}")
                continue
            if op == 0x0:
                if frag_op is None:
                    self.problems.append("continuation frame without a start")
                    continue
                frag.append(data)
                if fin:
                    self._deliver(frag_op, b"".join(frag))
                    frag_op, frag = None, []
            elif op in (0x1, 0x2):
                if frag_op is not None:
                    self.problems.append("new data frame inside a fragmented message")
                if fin:
                    self._deliver(op, data)
                else:
                    frag_op, frag = op, [data]
            else:
                self.problems.append(f"reserved data opcode {op}")

    def _deliver(self, op, data):
        if op == 0x2:
            self.binaries.append(data)
            self._note()
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.problems.append("text frame is not UTF-8")
            return
        self.texts.append(text)
        try:
            obj = json.loads(text)
        except ValueError:
            self.problems.append(f"text frame not JSON: {text[:200]!r}")
            return
        t = obj.get("type") if isinstance(obj, dict) else None
        if t == "welcome":
            self.welcome = obj
            self.client_id = obj.get("client", self.client_id)
            if obj.get("cursor") is not None:
                self.cursor = str(obj["cursor"])
                self._learn(self.cursor)
            self._ready.set()
        elif t == "message":
            _check_message(self, obj)
            self._epoch_of_message(obj)
            self._add_message(obj)
            self._advance(obj.get("channel"), obj.get("id"), obj.get("epoch"))
        elif t == "gap":
            self._epoch_of_gap(obj)
            self._add_gap(obj)
            self._advance(obj.get("channel"), obj.get("cursor"), obj.get("epoch"))
        elif t == "ping":
            self.app_pings += 1
        elif t == "cursor":
            # a message this client is excluded from moved its cursor, within
            # the incarnation its cursor is of
            e = obj.get("epoch")
            if not (isinstance(e, str) and EPOCH_RE.fullmatch(e)):
                self.problems.append(f"cursor frame without a good epoch: {text[:200]}")
            elif self.epochs.get(obj.get("channel")) not in (None, e):
                self.problems.append(f"cursor frame in epoch {e!r}, the cursor is of "
                                     f"{self.epochs[obj.get('channel')]!r}: {text[:200]}")
            self._advance(obj.get("channel"), obj.get("cursor"), e)
        else:
            self.others.append(obj)
        self._note()


def make_client(kind, gw, ch, since=None, **kw):
    """A subscriber of the given transport ('poll', 'longpoll', 'sse', 'ws')."""
    if kind == "poll":
        return PollClient(gw, ch, since=since, **kw)
    if kind == "longpoll":
        return LongPollClient(gw, ch, since=since, **kw)
    if kind == "sse":
        return SSEClient(gw, ch, since=since, **kw)
    if kind == "ws":
        return WSClient(gw, ch, since=since, **kw)
    raise ValueError(kind)


# ---------------------------------------------------------------------------
# the multiplexed WebSocket, GET /ws (issue 4)

class MuxClient(WSClient):
    """A client of the multiplexed WebSocket at /ws.

    Subscriptions are added at run time, so .channels grows with each
    subscribe (and shrinks with unsubscribe); .cursors holds one cursor per
    channel ({'a': 'k3x9a2bq:17'}), from the subscribe ack, then each
    message, gap and cursor frame.  Control frames are recorded as they arrive:
    .ctl every ack/error frame in order, .replies {ref: frame} (the last
    frame for that ref), .errors the error frames.  Every op takes an
    automatic ref unless one is given; op() sends and waits for its answer.

    Binary frames mode (hello binary:"frames"): a message envelope with
    "binary":"frame" is followed by one binary frame; the message is
    recorded once that frame is there, with the bytes in m['raw'].
    """

    kind = "ws"

    def __init__(self, gw, client=None, path=None, extra_query=None, **kw):
        super().__init__(gw, "", client=client, path=path, extra_query=extra_query, **kw)
        self.channels = []
        self.cursors = {}
        self.ctl = []
        self.replies = {}
        self.errors = []
        self.ack_refs = []          # refs of ack frames in arrival order
        self._ref = 0
        self._await_frame = None    # an envelope waiting for its binary frame

    def path(self):
        if self._path:
            return self._path
        q = []
        if self.client_id:
            q.append(("client", self.client_id))
        q += self.extra_query
        return "/ws" + ("?" + urllib.parse.urlencode(q, safe=",") if q else "")

    def describe(self):
        return (f"/ws client={self.client_id} channels={self.channels[:8]} end={self.end_reason} "
                f"close={self.close_code} msgs={len(self.messages)} ctl={len(self.ctl)} "
                f"errors={self.errors[-3:]} problems={self.problems[:3]}")

    # -- sending
    def next_ref(self):
        self._ref += 1
        return self._ref

    async def send_op(self, op, ref=_AUTO):
        """Send one op frame; returns its ref (None if sent without one)."""
        op = dict(op)
        if ref is _AUTO:
            ref = self.next_ref()
        if ref is not None:
            op["ref"] = ref
        await self.send_json(op)
        return ref

    async def wait_ref(self, ref, timeout=5.0):
        await self.wait_for(lambda: ref in self.replies, timeout, f"the answer to ref {ref}")
        return self.replies[ref]

    async def op(self, op, timeout=5.0, ref=_AUTO):
        """Send an op and wait for its ack or error frame; returns that frame."""
        r = await self.send_op(op, ref)
        if r is None:
            raise ValueError("op() needs a ref to wait for")
        return await self.wait_ref(r, timeout)

    async def ok_op(self, op, timeout=5.0):
        """op() that must be acknowledged; returns the ack frame."""
        f = await self.op(op, timeout)
        check(f.get("type") == "ack", f"/ws {op.get('op')} {op.get('channel', '')!s}: got {f!r}, want an ack")
        return f

    async def subscribe(self, ch, since=None, presence=False, **extra):
        op = {"op": "subscribe", "channel": ch, **extra}
        if since is not None:
            op["since"] = str(since)
        if presence:
            op["presence"] = True
        if ch not in self.channels:
            self.channels.append(ch)
        # a fresh subscription starts where its ack says (unless a frame of
        # it came first)
        self.cursors.pop(ch, None)
        self.epochs.pop(ch, None)
        f = await self.ok_op(op)
        try:
            epoch, _ = parse_cursor(f.get("cursor"), 1)[0]
            if epoch is None:
                raise ValueError("no epoch")
            self.cursors.setdefault(ch, f["cursor"])
            self.epochs.setdefault(ch, epoch)
        except ValueError as e:
            self.problems.append(f"subscribe ack cursor {f.get('cursor')!r} is not EPOCH:ID ({e})")
        return f

    async def unsubscribe(self, ch):
        f = await self.ok_op({"op": "unsubscribe", "channel": ch})
        if ch in self.channels:
            self.channels.remove(ch)
        return f

    async def publish(self, ch, data, event=None, exclude_sender=False, **extra):
        """Publish JSON data; returns the ack frame (with the id)."""
        op = {"op": "publish", "channel": ch, "data": data, **extra}
        if event is not None:
            op["event"] = event
        if exclude_sender:
            op["exclude_sender"] = True
        return self._publish_ack(await self.ok_op(op))

    def _publish_ack(self, f):
        """A publish ack names the id and the epoch it was stored in."""
        if f.get("type") == "ack" and not (isinstance(f.get("epoch"), str) and EPOCH_RE.fullmatch(f["epoch"])
                                           and isinstance(f.get("id"), int)):
            self.problems.append(f"publish ack without an id and an epoch: {f!r}")
        return f

    async def publish_raw_json(self, ch, data_text, ref=_AUTO):
        """Publish with `data` spliced in as given JSON text (byte-exact tests)."""
        if ref is _AUTO:
            ref = self.next_ref()
        frame = '{"op":"publish","channel":%s,"data":%s,"ref":%d}' % (json.dumps(ch), data_text, ref)
        await self.send_text(frame)
        return self._publish_ack(await self.wait_ref(ref))

    async def publish_binary(self, ch, data, event=None, exclude_sender=False, timeout=5.0):
        """The publish op with binary:true, then one binary frame; returns the answer."""
        op = {"op": "publish", "channel": ch, "binary": True}
        if event is not None:
            op["event"] = event
        if exclude_sender:
            op["exclude_sender"] = True
        ref = await self.send_op(op)
        await self.send_binary(data)
        return self._publish_ack(await self.wait_ref(ref, timeout))

    async def hello_binary_frames(self):
        return await self.ok_op({"op": "hello", "binary": "frames"})

    # -- receiving
    def _advance(self, channel, mid, epoch):
        if isinstance(mid, int):
            self.cursors[channel] = f"{epoch}:{mid}" if epoch is not None else str(mid)

    def on(self, ch):
        """The messages received on channel ch, in order."""
        return [m for m in self.messages if m.get("channel") == ch]

    def _deliver(self, op, data):
        if op == 0x2:
            if self._await_frame is not None:
                m, self._await_frame = self._await_frame, None
                m["raw"] = data
                self._epoch_of_message(m)
                self._add_message(m)
                self._advance(m.get("channel"), m.get("id"), m.get("epoch"))
                self._note()
                return
            self.binaries.append(data)
            self._note()
            return
        if self._await_frame is not None:
            self.problems.append(f"a text frame came between a binary:\"frame\" envelope and its "
                                 f"binary frame: {data[:100]!r}")
            self._await_frame = None
        try:
            text = data.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return super()._deliver(op, data)
        if isinstance(obj, dict) and obj.get("type") in ("ack", "error"):
            self.texts.append(text)
            self.ctl.append(obj)
            ref = obj.get("ref")
            if obj["type"] == "error":
                self.errors.append(obj)
                for k in ("code", "message"):
                    if not isinstance(obj.get(k), str):
                        self.problems.append(f"error frame without a string {k!r}: {text[:200]}")
            else:
                self.ack_refs.append(ref)
            if ref is not None:
                self.replies[ref] = obj
            self._note()
            return
        if isinstance(obj, dict) and obj.get("type") == "message" and obj.get("binary") == "frame":
            self.texts.append(text)
            _check_message(self, obj)
            if obj.get("data") is not None:
                self.problems.append(f"binary:\"frame\" envelope with data {str(obj.get('data'))[:60]}")
            self._await_frame = obj
            return
        return super()._deliver(op, data)


def rss_kb(pid):
    """Resident set size of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def composite(channels, last, epochs=None):
    """The composite cursor for channels given {channel: last id} (0 if
    absent): EPOCH:ID for a channel that epochs ({channel: epoch}) names,
    the plain id for the others."""
    epochs = epochs or {}
    return ",".join(f"{epochs[c]}:{last.get(c, 0)}" if epochs.get(c) else str(last.get(c, 0))
                    for c in channels)
