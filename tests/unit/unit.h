/* unit.h: what every unit test program shares. Each test_*.c builds one
 * Check suite and ends with UNIT_MAIN(its_suite). Results go to stdout as
 * TAP for the automake TAP driver, which decides pass or fail; the program
 * itself always exits 0 unless it crashes (the driver reports that too). */
#ifndef ANYPUSH_UNIT_H
#define ANYPUSH_UNIT_H

#include <check.h>
#include <stddef.h>
#include <stdlib.h>

/* A string literal and its length without the final NUL, for the
 * (const char *, size_t) APIs: LIT("a\0b") passes 3. */
#define LIT(s) (s), (sizeof(s) - 1)

/* Elements of an array. */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static inline int unit_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);

	srunner_set_tap(sr, "-");
	/* No fork: one process, so valgrind sees every test's memory. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	srunner_free(sr);
	return 0;
}

#define UNIT_MAIN(suite_fn)                  \
	int main(void)                       \
	{                                    \
		return unit_run(suite_fn()); \
	}

#endif
