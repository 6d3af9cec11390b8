#!/usr/bin/env python3
"""The test runners' own checks, shown to fail when they should: a gateway
whose stderr has a sanitizer report fails its test in gwlib (even a @todo
one) and in tests/browser/lib.js, although it exits 0; a non-zero exit
fails lib.js's last point; a same-port restart whose first start fails is
tried again; scripts/summarize counts SKIP, XFAIL, missing results and
failures the way its header says.  The gateway here is fake_gateway.py."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from gwlib import HERE, REPO, Gateway, check, expect_eq, run, skip

FAKE = str(HERE / "fake_gateway.py")


def child(cmd, mode, extra_env=None, timeout=40):
    """Run cmd with the fake gateway as ANYPUSH_BIN; returns its stdout."""
    env = dict(os.environ, ANYPUSH_BIN=FAKE, FAKE_GW_MODE=mode, **(extra_env or {}))
    r = subprocess.run(cmd, env=env, cwd=str(HERE), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


GWLIB_CHILD = textwrap.dedent("""
    from gwlib import Gateway, run, todo

    def plain():
        "a test whose gateway stops"
        with Gateway():
            pass

    @todo("a known failure")
    def known():
        "a @todo test whose gateway stops"
        with Gateway():
            raise AssertionError("the known failure")

    raise SystemExit(run([plain, known], budget=30))
""")


def test_gwlib_sanitizer_report():
    "gwlib: a gateway that exits 0 after an ASan report fails its test, @todo or not"
    rc, out = child([sys.executable, "-c", GWLIB_CHILD], "asan")
    lines = out.splitlines()
    check("not ok 1 - a test whose gateway stops" in lines, f"plain test not failed:\n{out}")
    check("not ok 2 - a @todo test whose gateway stops" in lines,
          f"@todo test not failed outright (a TODO hides it):\n{out}")
    check("AddressSanitizer: heap-use-after-free" in out, f"the report is not shown:\n{out}")
    rc, out = child([sys.executable, "-c", GWLIB_CHILD], "clean")
    check("ok 1 - a test whose gateway stops" in out.splitlines(), f"the clean case failed:\n{out}")


def test_gwlib_restart_retries():
    "gwlib: a same-port restart whose first start fails (port still held) is tried again"
    with tempfile.TemporaryDirectory() as d:
        os.environ.update(ANYPUSH_BIN=FAKE, FAKE_GW_MODE="clean", FAKE_GW_COUNT=os.path.join(d, "n"),
                          FAKE_GW_FAIL_ON="2")
        try:
            with Gateway() as gw:
                port = gw.port
                gw.restart()
                expect_eq(gw.port, port, "port after the restart")
                check(gw.alive(), "restarted gateway not running")
        finally:
            for k in ("FAKE_GW_MODE", "FAKE_GW_COUNT", "FAKE_GW_FAIL_ON"):
                os.environ.pop(k, None)
            os.environ["ANYPUSH_BIN"] = SAVED_BIN
        with open(os.path.join(d, "n")) as f:
            expect_eq(f.read(), "3", "starts: the first, the failed one, the retry")


LIBJS_CHILD = textwrap.dedent("""
    const L = require('../browser/lib.js');
    const t = L.tap(1, 20000);
    (async () => {
      await t.test('a gateway starts and is stopped', async () => {
        const gw = await L.startGateway([]);
        await gw.stop();
      });
      await t.done();
    })();
""")


def libjs(mode):
    # lib.js needs node only, not Chromium: skipped only where the browser
    # tests are explicitly off (make distcheck) and there is no node
    if shutil.which("node") is None:
        if os.environ.get("ANYPUSH_BROWSER_TESTS") == "no":
            skip("no node, and configure --disable-browser-tests")
        raise AssertionError("node is missing: the browser tests cannot run")
    return child(["node", "-e", LIBJS_CHILD], mode)


def test_libjs_sanitizer_report():
    "lib.js: an ASan report on the gateway's stderr fails the file's last point; a clean one passes"
    rc, out = libjs("asan")
    check("not ok 2 - " in out and "AddressSanitizer: heap-use-after-free" in out and rc != 0,
          f"rc {rc}:\n{out}")
    rc, out = libjs("clean")
    check(out.startswith("1..2\n") and "\nok 2 - " in out and rc == 0, f"clean gateway: rc {rc}:\n{out}")


def test_libjs_exit_status():
    "lib.js: a gateway that exits 1 after SIGTERM fails the file's last point"
    rc, out = libjs("exit1")
    check("not ok 2 - " in out and "exit status 1, want 0" in out and rc != 0, f"rc {rc}:\n{out}")


def summarize(files, *tests, ci=""):
    """scripts/summarize over a tree of the given {path: text}; returns
    (stdout line, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            p = Path(d, name)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        r = subprocess.run([str(REPO / "scripts" / "summarize"), "tests", *tests], cwd=d,
                           env=dict(os.environ, CI=ci), capture_output=True, text=True, timeout=20)
        expect_eq(r.returncode, 0, f"summarize exit status ({r.stderr})")
        return r.stdout.strip(), r.stderr


TREE = {
    "tests/a.trs": ":test-result: PASS\n:test-result: PASS\n:test-result: SKIP\n:test-result: XFAIL\n",
    "tests/a.log": "ok 1 - one\nok 2 - two\nok 3 - three # SKIP no three here\nnot ok 4 - four # TODO known\n",
    "tests/b.trs": ":test-result: FAIL\n:test-result: XPASS\n:test-result: ERROR\n",
}


def test_summarize_counts():
    "scripts/summarize: SKIP and XFAIL are not passes; FAIL, XPASS, ERROR fail; CI=true fails a SKIP"
    expect_eq(summarize(TREE)[0], "2 passed, 3 failed, 1 skipped, 1 xfail", "outside CI")
    line, err = summarize(TREE, ci="true")
    expect_eq(line, "2 passed, 4 failed, 0 skipped, 1 xfail", "CI=true")
    check("tests/a: 1 SKIP not in tests/skips-allowed" in err, f"no reason given for the failed SKIP: {err!r}")


def test_summarize_missing():
    "scripts/summarize: a test named but without a result is a failure; none at all is not '0 failed'"
    expect_eq(summarize(TREE, "tests/a.py", "tests/gone.py", "tests/unit/test_x")[0],
              "2 passed, 5 failed, 1 skipped, 1 xfail", "two tests without results")
    expect_eq(summarize({}, "tests/a.py")[0], "0 passed, 1 failed, 0 skipped, 0 xfail", "no results at all")


SAVED_BIN = os.environ.get("ANYPUSH_BIN", "")

if __name__ == "__main__":
    raise SystemExit(run([test_gwlib_sanitizer_report, test_gwlib_restart_retries, test_libjs_sanitizer_report,
                          test_libjs_exit_status, test_summarize_counts, test_summarize_missing],
                         budget=55, timeout=25))
