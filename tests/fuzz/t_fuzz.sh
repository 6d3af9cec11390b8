#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a few
# seconds from its seed corpus: a smoke run in the suite; run longer by
# hand with FUZZ_SECONDS=600. Prints TAP. The parser targets link the
# parsers alone; fuzz_request links the bus and the transports' formatting
# (and replaces the transports' ops tables); fuzz_config links config.c
# and the transport registry, whose ops tables it never calls.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${FUZZ_SECONDS:-8}
out=${TMPDIR:-/tmp}/anypush-fuzz.$$
targets="router_head payload cursor ws_mux request config"
echo "1..6"
if ! command -v clang >/dev/null 2>&1; then
	n=1
	for t in $targets; do echo "ok $n - fuzz $t # SKIP clang not installed"; n=$((n + 1)); done
	exit 0
fi
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT INT TERM
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -I$top/src $(pkg-config --cflags libcjson)"
libs="$(pkg-config --libs libcjson)"
src="$top/src/log.c $top/src/fmt.c $top/src/validate.c $top/src/cursor.c $top/src/payload.c $top/src/xalloc.c $top/src/router_head.c $top/src/ws_mux.c $top/src/idem.c $top/src/siphash.c"
request_src=""
for f in bus message pollers capacity metrics transport sse_format frame_format poll_format; do
	request_src="$request_src $top/src/$f.c"
done
n=1
for t in $targets; do
	extra=""
	[ "$t" = request ] && extra="$request_src $(pkg-config --cflags libwebsockets) -lpthread"
	[ "$t" = config ] && extra="$top/src/config.c $top/src/config_doc.c $top/src/transport.c $top/src/redis_url.c -DPACKAGE_VERSION=\"fuzz\""
	if ! clang $cflags -o "$out/fuzz_$t" "$here/fuzz_$t.c" $src $extra $libs >"$out/$t.build" 2>&1; then
		echo "not ok $n - fuzz $t: build failed"; sed 's/^/# /' "$out/$t.build" | tail -20
	else
		mkdir -p "$out/corpus_$t"
		if "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
			-rss_limit_mb=1024 -artifact_prefix="$out/" "$out/corpus_$t" "$here/corpus/$t" >"$out/$t.log" 2>&1; then
			echo "ok $n - fuzz $t for ${secs}s: $(grep -o 'Done [0-9]* runs' "$out/$t.log" | head -1)"
		else
			echo "not ok $n - fuzz $t found a crash"; grep -A30 'ERROR\|SUMMARY' "$out/$t.log" | head -40 | sed 's/^/# /'
		fi
	fi
	n=$((n + 1))
done
