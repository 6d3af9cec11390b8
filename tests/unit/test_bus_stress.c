/* The bus under concurrent load, for ThreadSanitizer and as a plain test:
 * publisher threads, subscriber threads that loop attach (at the tail, at
 * kept cursors, at plain ids; in one call, or with no channel and then
 * tap by tap as /ws does) / pull-and-park, adding and dropping taps /
 * detach, and kill each other, and a bus_tick thread, on a history so
 * small (count, bytes and age) that eviction and gaps happen all the
 * time.
 *
 * Every subscriber checks its own stream, per channel: each item follows
 * on from its cursor (a message or skip item is cursor + 1), or is a gap
 * that starts exactly at its cursor and ends exactly where history began
 * at that moment (between the oldest ids read just before and just after
 * the pull), messages come in publish order across channels and from the
 * channel they claim, and each park gets exactly one wake. At the end
 * every reference is back: message_alive() is history's count, then its
 * starting value once the bus is freed.
 *
 * The fake transport's park and wake run under the bus lock, like MHD's
 * suspend and resume: wake posts the subscriber thread's semaphore. The
 * heartbeat (PERIOD_MS) wakes every parked subscriber soon, so a wake a
 * publish forgot is hidden here (as in the gateway, where it costs a
 * heartbeat's delay); a park that gets no wake at all, from a publish, a
 * kill or the tick, shows as a thread waiting WAKE_BOUND_MS for nothing.
 * Threads record the first failure; the test thread asserts it, since
 * Check's asserts may not run on other threads. The run lasts RUN_MS
 * (ANYPUSH_STRESS_MS overrides it), whatever the build's speed. */
#include "unit.h"

#include "bus.h"
#include "message.h"
#include "payload.h"
#include "transport.h"
#include "validate.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TS_MS 1700000000000LL
#define RUN_MS 2000
#define PUBLISHERS 3
#define SUBSCRIBERS 4
#define NCH 4              /* channels s0..s3 */
#define HISTORY 4          /* messages per channel */
#define HISTORY_BYTES 3000 /* all channels: about a dozen messages */
#define HISTORY_AGE_MS 5
#define LAG_LIMIT 4000 /* bytes behind before a slow cut */
#define PERIOD_MS 10   /* heartbeat: a parked subscriber always wakes */
#define WAKE_BOUND_MS 5000
#define MAXI 5 /* items per pull, small so pulls stop at it */

/* ---- what the threads found ---- */

static atomic_bool stop_clients, stop_tick, failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[512];

static void stress_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void stress_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!atomic_load(&failed)) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof first_failure, fmt, ap);
		va_end(ap);
		atomic_store(&failed, true);
	}
	pthread_mutex_unlock(&fail_lock);
	atomic_store(&stop_clients, true);
}

static struct {
	atomic_long published, delivered, gaps, skips, timers, attaches,
		ends_dead, ends_slow, kills, replies, retaps;
} count;

/* ---- the fake transport ---- */

struct ssub {
	struct subscriber sub; /* first, so the callbacks can cast back */
	sem_t woken;
	/* Guarded by the bus lock: park and wake run under it. */
	bool suspended;
	long parks, wakes, cuts, bad_parks, bad_wakes;
};

static struct ssub *ssub_of(struct subscriber *s)
{
	return (struct ssub *)s;
}

/* MHD panics on a resume without a suspend and hangs on a suspend never
 * resumed: count both. */
static void fake_park(struct subscriber *s)
{
	struct ssub *t = ssub_of(s);

	if (t->suspended)
		t->bad_parks++;
	t->suspended = true;
	t->parks++;
}

static void fake_wake(struct subscriber *s)
{
	struct ssub *t = ssub_of(s);

	if (!t->suspended)
		t->bad_wakes++;
	t->suspended = false;
	t->wakes++;
	sem_post(&t->woken);
}

static void fake_cut(struct subscriber *s)
{
	ssub_of(s)->cuts++;
}

static const struct sub_host fake_host = {
	.name = "fake",
	.park = fake_park,
	.wake = fake_wake,
	.cut = fake_cut,
};
/* ---- the shared bus ---- */

static struct bus *bus;
static const char *const names[NCH] = { "s0", "s1", "s2", "s3" };
/* attached subscribers' ids, for the others to kill; 0: none */
static _Atomic uint64_t live_ids[SUBSCRIBERS];

static unsigned rnd(unsigned *seed, unsigned n)
{
	return (unsigned)rand_r(seed) % n;
}

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static void *publisher(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + (unsigned)time(NULL);
	long n = 0;

	while (!atomic_load(&stop_clients)) {
		unsigned c = rnd(&seed, NCH);
		char from[16];
		struct payload p;
		struct message_spec spec = { .channel = names[c], .data = &p };
		struct cursor at;

		/* some messages exclude one subscriber: its skip items */
		if (n % 7 == 0) {
			snprintf(from, sizeof from, "sub%u",
				 rnd(&seed, SUBSCRIBERS));
			spec.from = from;
			spec.exclude_sender = true;
		}
		payload_from_text(names[c], strlen(names[c]), &p);
		if (bus_publish(bus, names[c], strlen(names[c]),
				message_new(&spec, TS_MS, bus_now_ms()),
				&at) != BUS_OK)
			stress_fail("publish to %s refused", names[c]);
		payload_free(&p);
		atomic_fetch_add(&count.published, 1);
		/* and pauses longer than PERIOD_MS, for the heartbeats */
		if (++n % 512 == 0)
			sleep_us(3 * PERIOD_MS * 1000);
		else if (n % 16 == 0)
			sleep_us(50);
	}
	return NULL;
}

static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_tick)) {
		bus_tick(bus, bus_now_ms());
		sleep_us(1000);
	}
	return NULL;
}

/* ---- a subscriber thread ---- */

/* What one subscriber knows of a channel across its attachments. */
struct known {
	bool seen;
	uint64_t epoch, cursor;
};

struct client {
	int index;
	struct ssub s;
	struct known ch[NCH];
	unsigned seed;
	/* this attachment */
	size_t ntaps;
	unsigned tap_ch[NCH]; /* channel of each tap */
	uint64_t last_seq;    /* publish order across its channels */
};

static uint64_t oldest_of(unsigned c)
{
	struct bus_channel_info info;

	bus_info(bus, names[c], strlen(names[c]), &info);
	return info.oldest_id;
}

static bool data_is(const struct message *m, const char *text)
{
	size_t n = strlen(text);
	const char *d = message_json(m) + m->data_off;

	return m->data_len == n + 2 && d[0] == '"' &&
	       memcmp(d + 1, text, n) == 0 && d[n + 1] == '"';
}

/* The cursor a subscriber resumes channel c from: the one it kept, or
 * plain id 0 for a channel it never read. */
static struct cursor since_of(const struct client *cl, unsigned c)
{
	const struct known *k = &cl->ch[c];

	return k->seen ? (struct cursor){ k->epoch, k->cursor } :
			 (struct cursor){ 0, 0 };
}

/* Check and keep where the bus says tap c starts. */
static void learn_start(struct client *cl, unsigned c, bool at_tail,
			struct cursor since, struct cursor start)
{
	struct known *k = &cl->ch[c];

	/* epochs never change here: no channel's tomb is ever trimmed
	 * (NCH < max_channels) */
	if (k->seen && start.epoch != k->epoch)
		stress_fail("sub%d: %s epoch changed", cl->index, names[c]);
	if (!at_tail && start.id != since.id)
		stress_fail("sub%d: %s starts at %llu, asked %llu", cl->index,
			    names[c], (unsigned long long)start.id,
			    (unsigned long long)since.id);
	k->seen = true;
	k->epoch = start.epoch;
	k->cursor = start.id;
}

/* Add channel c as the last tap, as the /ws subscribe op does. A tap
 * that starts behind the others may bring older messages: publish order
 * holds again from here. */
static bool client_tap_add(struct client *cl, unsigned c)
{
	bool at_tail = rnd(&cl->seed, 4) == 0;
	struct cursor since = since_of(cl, c), start;
	enum bus_error err;

	err = bus_tap_add(bus, &cl->s.sub, names[c], strlen(names[c]),
			  at_tail ? NULL : &since, false, &start);
	if (err != BUS_OK) {
		stress_fail("sub%d: tap on %s refused (%d)", cl->index,
			    names[c], err);
		return false;
	}
	cl->tap_ch[cl->ntaps++] = c;
	cl->last_seq = 0;
	learn_start(cl, c, at_tail, since, start);
	return true;
}

/* Add a channel it does not read, or drop one of several (the /ws
 * subscribe and unsubscribe ops). */
static void client_retap(struct client *cl)
{
	size_t i = rnd(&cl->seed, (unsigned)cl->ntaps);
	unsigned c = rnd(&cl->seed, NCH);

	if (cl->ntaps > 1 && rnd(&cl->seed, 2)) {
		bus_tap_remove(bus, &cl->s.sub, i);
		memmove(&cl->tap_ch[i], &cl->tap_ch[i + 1],
			(cl->ntaps - i - 1) * sizeof *cl->tap_ch);
		cl->ntaps--;
		atomic_fetch_add(&count.retaps, 1);
		return;
	}
	for (size_t k = 0; k < cl->ntaps; k++)
		if (cl->tap_ch[k] == c)
			return;
	if (client_tap_add(cl, c))
		atomic_fetch_add(&count.retaps, 1);
}

/* Attach to a random set of channels, in one call or (as /ws does) with
 * none and then one tap at a time: at the tail, or where it left off. */
static bool client_attach(struct client *cl)
{
	struct channel_list list = { 0 };
	struct cursor since[NCH], start[NCH];
	bool at_tail = rnd(&cl->seed, 4) == 0;
	bool one_by_one = rnd(&cl->seed, 4) == 0;
	unsigned first = rnd(&cl->seed, NCH), n = 1 + rnd(&cl->seed, NCH);
	enum bus_error err;

	for (unsigned i = 0; i < n && !one_by_one; i++) {
		unsigned c = (first + i) % NCH;

		cl->tap_ch[i] = c;
		list.name[i] = names[c];
		list.len[i] = strlen(names[c]);
		since[i] = since_of(cl, c);
	}
	list.count = one_by_one ? 0 : n;
	cl->ntaps = list.count;
	cl->last_seq = 0;
	/* a new connection: its transport fills a zeroed subscriber */
	memset(&cl->s.sub, 0, sizeof cl->s.sub);
	cl->s.sub.transport = &transport_sse;
	cl->s.sub.host = &fake_host;
	cl->s.sub.period_ms = PERIOD_MS;
	snprintf(cl->s.sub.client, sizeof cl->s.sub.client, "sub%d", cl->index);
	err = bus_attach(bus, &cl->s.sub, &list, at_tail ? NULL : since, start);
	if (err != BUS_OK) {
		stress_fail("sub%d: attach refused (%d)", cl->index, err);
		return false;
	}
	for (unsigned i = 0; i < list.count; i++)
		learn_start(cl, cl->tap_ch[i], at_tail, since[i], start[i]);
	for (unsigned i = 0; i < n && one_by_one; i++)
		if (!client_tap_add(cl, (first + i) % NCH)) {
			bus_detach(bus, &cl->s.sub);
			return false;
		}
	atomic_fetch_add(&count.attaches, 1);
	bus_set_deadline(bus, &cl->s.sub, bus_now_ms() + PERIOD_MS);
	atomic_store(&live_ids[cl->index], cl->s.sub.id);
	return true;
}

static void check_gap(struct client *cl, const struct bus_item *it,
		      uint64_t before, uint64_t after)
{
	unsigned c = cl->tap_ch[it->tap];
	struct known *k = &cl->ch[c];

	if (it->gap_last != k->cursor)
		stress_fail("sub%d: %s gap from %llu, cursor was %llu",
			    cl->index, names[c],
			    (unsigned long long)it->gap_last,
			    (unsigned long long)k->cursor);
	/* the gap ends where history began when it was taken */
	if (it->cursor + 1 < before || it->cursor + 1 > after)
		stress_fail(
			"sub%d: %s gap to %llu, history began at %llu..%llu",
			cl->index, names[c], (unsigned long long)it->cursor,
			(unsigned long long)before, (unsigned long long)after);
	if (it->cursor <= it->gap_last)
		stress_fail("sub%d: %s gap %llu..%llu misses nothing",
			    cl->index, names[c],
			    (unsigned long long)it->gap_last,
			    (unsigned long long)it->cursor);
	k->cursor = it->cursor;
	atomic_fetch_add(&count.gaps, 1);
}

static void check_item(struct client *cl, const struct bus_item *it)
{
	unsigned c = cl->tap_ch[it->tap];
	struct known *k = &cl->ch[c];
	const struct message *m = it->msg;

	if (it->epoch != k->epoch)
		stress_fail("sub%d: %s item of another epoch", cl->index,
			    names[c]);
	if (it->cursor != k->cursor + 1)
		stress_fail("sub%d: %s jumps from %llu to %llu with no gap",
			    cl->index, names[c], (unsigned long long)k->cursor,
			    (unsigned long long)it->cursor);
	k->cursor = it->cursor;
	if (it->skip) {
		atomic_fetch_add(&count.skips, 1);
		return;
	}
	if (m->id != it->cursor || !data_is(m, names[c]))
		stress_fail(
			"sub%d: %s item %llu holds message %llu of another channel",
			cl->index, names[c], (unsigned long long)it->cursor,
			(unsigned long long)m->id);
	if (m->seq <= cl->last_seq)
		stress_fail("sub%d: publish order broken (seq %llu after %llu)",
			    cl->index, (unsigned long long)m->seq,
			    (unsigned long long)cl->last_seq);
	cl->last_seq = m->seq;
	atomic_fetch_add(&count.delivered, 1);
}

static bool wait_wake(struct client *cl)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAKE_BOUND_MS / 1000;
	until.tv_nsec += (WAKE_BOUND_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&cl->s.woken, &until) != 0) {
		if (errno != EINTR) {
			stress_fail("sub%d: parked and never woken in %d ms",
				    cl->index, WAKE_BOUND_MS);
			return false;
		}
	}
	return true;
}

/* One pull, checked; false when the attachment is over. */
static bool client_pull(struct client *cl)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	uint64_t before[NCH], after[NCH];
	size_t max_bytes = rnd(&cl->seed, 2) ? SIZE_MAX : 600;
	bool gaps = false;

	for (size_t i = 0; i < cl->ntaps; i++)
		before[i] = oldest_of(cl->tap_ch[i]);
	bus_pull(bus, &cl->s.sub, items, 1 + rnd(&cl->seed, MAXI), max_bytes,
		 true, &out);
	for (size_t i = 0; i < out.count; i++)
		gaps |= items[i].msg == NULL && !items[i].skip;
	for (size_t i = 0; gaps && i < cl->ntaps; i++)
		after[i] = oldest_of(cl->tap_ch[i]);
	for (size_t i = 0; i < out.count; i++) {
		if (items[i].msg == NULL && !items[i].skip)
			check_gap(cl, &items[i], before[items[i].tap],
				  after[items[i].tap]);
		else
			check_item(cl, &items[i]);
	}
	/* the poll path's cached reply, built and charged concurrently */
	if (out.count && items[0].msg && rnd(&cl->seed, 4) == 0) {
		size_t len = 0;

		if (bus_single_reply(bus, items[0].msg, &len) == NULL ||
		    len == 0)
			stress_fail("sub%d: no single reply", cl->index);
		atomic_fetch_add(&count.replies, 1);
	}
	bus_items_release(items, out.count);
	if (out.timer)
		atomic_fetch_add(&count.timers, 1);
	if (out.end != SUB_END_NONE) {
		atomic_fetch_add(out.end == SUB_END_SLOW ? &count.ends_slow :
							   &count.ends_dead,
				 1);
		return false;
	}
	return !out.parked || wait_wake(cl);
}

static void kill_another(struct client *cl)
{
	unsigned j = rnd(&cl->seed, SUBSCRIBERS);
	uint64_t id = atomic_load(&live_ids[j]);

	/* an id already detached finds nothing: that is the point of ids */
	if ((int)j != cl->index && id) {
		bus_kill(bus, id, SUB_END_DEAD);
		atomic_fetch_add(&count.kills, 1);
	}
}

static void *subscriber(void *arg)
{
	struct client *cl = arg;

	while (!atomic_load(&stop_clients)) {
		unsigned rounds = 1 + rnd(&cl->seed, 40);

		if (!client_attach(cl))
			break;
		while (rounds-- && !atomic_load(&stop_clients)) {
			if (!client_pull(cl))
				break;
			if (rnd(&cl->seed, 16) == 0)
				kill_another(cl);
			if (rnd(&cl->seed, 8) == 0)
				client_retap(cl);
		}
		atomic_store(&live_ids[cl->index], 0);
		bus_detach(bus, &cl->s.sub);
		if (rnd(&cl->seed, 4) == 0)
			kill_another(cl);
	}
	return NULL;
}

static long run_ms(void)
{
	const char *s = getenv("ANYPUSH_STRESS_MS");
	long ms = s ? strtol(s, NULL, 10) : 0;

	return ms > 0 ? ms : RUN_MS;
}

START_TEST(test_bus_stress)
{
	const struct bus_config cfg = {
		.history_size = HISTORY,
		.history_age_ms = HISTORY_AGE_MS,
		.history_bytes = HISTORY_BYTES,
		.max_channels = 2 * NCH,
		.lag_limit = LAG_LIMIT,
		.presence_window_ms = 1000,
		.max_pollers = 100,
	};
	static struct client clients[SUBSCRIBERS];
	pthread_t pub[PUBLISHERS], sub[SUBSCRIBERS], tick;
	long alive_before = message_alive(), ms = run_ms();
	long parks = 0, wakes = 0, cuts = 0;
	unsigned seed0 = (unsigned)time(NULL);
	struct bus_stats st;

	bus = bus_new(&cfg);
	for (int i = 0; i < SUBSCRIBERS; i++) {
		struct client *cl = &clients[i];

		memset(cl, 0, sizeof *cl);
		cl->index = i;
		cl->seed = seed0 + (unsigned)i * 104729u;
		ck_assert_int_eq(sem_init(&cl->s.woken, 0, 0), 0);
	}
	ck_assert_int_eq(pthread_create(&tick, NULL, ticker, NULL), 0);
	for (int i = 0; i < PUBLISHERS; i++)
		ck_assert_int_eq(pthread_create(&pub[i], NULL, publisher,
						(void *)(uintptr_t)i),
				 0);
	for (int i = 0; i < SUBSCRIBERS; i++)
		ck_assert_int_eq(
			pthread_create(&sub[i], NULL, subscriber, &clients[i]),
			0);
	for (long t = 0; t < ms && !atomic_load(&failed); t += 10)
		sleep_us(10000);
	atomic_store(&stop_clients, true);
	for (int i = 0; i < PUBLISHERS; i++)
		pthread_join(pub[i], NULL);
	/* the ticker keeps waking parked subscribers until they are done */
	for (int i = 0; i < SUBSCRIBERS; i++)
		pthread_join(sub[i], NULL);
	atomic_store(&stop_tick, true);
	pthread_join(tick, NULL);

	for (int i = 0; i < SUBSCRIBERS; i++) {
		struct ssub *s = &clients[i].s;

		ck_assert_msg(s->bad_parks == 0 && s->bad_wakes == 0,
			      "sub%d: %ld parks while parked, %ld wakes "
			      "while not parked",
			      i, s->bad_parks, s->bad_wakes);
		ck_assert_msg(!s->suspended, "sub%d detached while parked", i);
		parks += s->parks;
		wakes += s->wakes;
		cuts += s->cuts;
		sem_destroy(&s->woken);
	}
	printf("# seed %u, %ld ms: %ld published, %ld delivered, %ld gaps, "
	       "%ld skips, %ld timers, %ld attaches, %ld parks, %ld wakes, "
	       "%ld kills, %ld ended dead, %ld ended slow (%ld cut), "
	       "%ld single replies, %ld taps added or removed\n",
	       seed0, ms, atomic_load(&count.published),
	       atomic_load(&count.delivered), atomic_load(&count.gaps),
	       atomic_load(&count.skips), atomic_load(&count.timers),
	       atomic_load(&count.attaches), parks, wakes,
	       atomic_load(&count.kills), atomic_load(&count.ends_dead),
	       atomic_load(&count.ends_slow), cuts, atomic_load(&count.replies),
	       atomic_load(&count.retaps));
	fflush(stdout); /* a TAP comment, into the test's log */
	ck_assert_msg(!atomic_load(&failed), "seed %u: %s", seed0,
		      first_failure);
	/* the run did what it is for, or it proves nothing */
	ck_assert_msg(count.delivered > 0 && count.gaps > 0 &&
			      count.skips > 0 && count.timers > 0 &&
			      count.ends_dead > 0 && count.retaps > 0 &&
			      parks > 0,
		      "the run missed a case it is for (see the counts)");

	bus_stats(bus, &st);
	ck_assert_uint_eq(st.subscribers, 0);
	/* every pulled reference was dropped: what lives is history */
	ck_assert_int_eq(message_alive(), alive_before + (long)st.retained);
	bus_free(bus);
	bus = NULL;
	ck_assert_int_eq(message_alive(), alive_before);
}
END_TEST

static Suite *bus_stress_suite(void)
{
	Suite *s = suite_create("bus_stress");
	TCase *tc = tcase_create("threads");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_bus_stress);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(bus_stress_suite)
