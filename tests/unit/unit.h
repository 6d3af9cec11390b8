/* unit.h: what every unit test program shares. Each test_*.c builds one
 * Check suite and ends with UNIT_MAIN(its_suite). Results go to stdout as
 * TAP for the automake TAP driver, which decides pass or fail; the program
 * itself always exits 0 unless it crashes (the driver reports that too).
 *
 * Every test runs in a child process of its own (CK_FORK) under a time
 * limit, so a test that crashes or hangs is one failed test point
 * ("Test timeout expired") and the suite goes on; without the fork, Check
 * can enforce no timeout and a hung test hangs make check. */
#ifndef ANYPUSH_UNIT_H
#define ANYPUSH_UNIT_H

#include <check.h>
#include <stddef.h>
#include <stdlib.h>

/* Seconds a test may take unless its case says otherwise: far above what
 * any test needs on a loaded 2-core machine under ASan, far below make
 * check's patience. CK_DEFAULT_TIMEOUT in the environment overrides it. */
#define UNIT_TIMEOUT "60"

/* A string literal and its length without the final NUL, for the
 * (const char *, size_t) APIs: LIT("a\0b") passes 3. */
#define LIT(s) (s), (sizeof(s) - 1)

/* Elements of an array. */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static inline int unit_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);

	srunner_set_tap(sr, "-");
	/* Not CK_FORK_GETENV: CK_FORK=no in the environment must not turn
	 * the timeouts off. Under valgrind, use --trace-children=yes. */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_SILENT);
	srunner_free(sr);
	return 0;
}

/* The default timeout is read by tcase_create(), so it is set before
 * the suite is built. */
#define UNIT_MAIN(suite_fn)                                       \
	int main(void)                                            \
	{                                                         \
		setenv("CK_DEFAULT_TIMEOUT", UNIT_TIMEOUT, 0);    \
		return unit_run(suite_fn());                      \
	}

#endif
