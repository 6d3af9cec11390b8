#!/bin/sh
# What the other tests need, as TAP: a missing piece is a failed point
# here, so that make check fails with its name instead of counting fewer
# tests. configure passes what it found (Makefile.am's
# AM_TESTS_ENVIRONMENT): ANYPUSH_HAVE_CHECK, ANYPUSH_BROWSER_TESTS (no only
# with an explicit --disable-browser-tests, as make distcheck does).
here=$(cd "$(dirname "$0")" && pwd)
echo "1..2"
if [ "${ANYPUSH_HAVE_CHECK:-}" = yes ]; then
	echo "ok 1 - Check (>= 0.15) found: the unit suites are built and run"
else
	echo "not ok 1 - Check (>= 0.15) missing: configure left the unit suites out (install check, or run scripts/setup, then configure again)"
fi
if [ "${ANYPUSH_BROWSER_TESTS:-}" = no ]; then
	echo "ok 2 - browser tests # SKIP configure --disable-browser-tests"
	exit 0
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
missing=""
command -v node >/dev/null 2>&1 || missing="$missing node;"
[ -x "$chromium" ] || missing="$missing Chromium ($chromium);"
for m in playwright-core acorn; do
	[ -f "$here/browser/node_modules/$m/package.json" ] ||
		missing="$missing npm package $m in tests/browser;"
done
if [ -z "$missing" ]; then
	echo "ok 2 - node, Chromium and the npm packages of tests/browser found"
else
	echo "not ok 2 - the browser tests cannot run, missing:$missing install them (scripts/setup) or configure --disable-browser-tests"
fi
