/* Cursor text <-> positions. Strict on purpose: a cursor a client cannot
 * have been given is a client bug worth a 400, not something to guess at.
 *
 * Epochs are random rather than a clock: two incarnations of a channel
 * (before and after a restart, or a reclaim) must differ even when the
 * clock stepped back, and an unguessable epoch also means a client cannot
 * claim a position in an incarnation it never saw. 36^7..36^8 keeps the
 * text at 8 characters (41 bits): short, since it travels on every SSE
 * message. */
#include "cursor.h"

#include "fmt.h"

#include <sys/random.h>
#include <time.h>

#define EPOCH_DIGITS_MAX 13
#define EPOCH_LOW 78364164096ULL    /* 36^7 */
#define EPOCH_HIGH 2821109907456ULL /* 36^8 */

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_epoch(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > EPOCH_DIGITS_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'z')
			d = (unsigned)(s[i] - 'a') + 10;
		else
			return -1;
		if (v > (UINT64_MAX - d) / 36)
			return -1;
		v = v * 36 + d;
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

/* One cursor, ID or EPOCH:ID. */
static int parse_one(const char *s, size_t len, struct cursor *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ':')
			continue;
		if (parse_epoch(s, i, &out->epoch) < 0)
			return -1;
		return parse_u64(s + i + 1, len - i - 1, &out->id);
	}
	out->epoch = 0;
	return parse_u64(s, len, &out->id);
}

int cursor_parse(const char *s, size_t len, size_t count, struct cursor *out)
{
	size_t start = 0, n = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		if (n == count || parse_one(s + start, i - start, &out[n]) < 0)
			return -1;
		n++;
		start = i + 1;
	}
	return n == count ? 0 : -1;
}

size_t cursor_epoch_text(uint64_t epoch, char *buf)
{
	char rev[EPOCH_DIGITS_MAX];
	size_t n = 0;

	do {
		unsigned d = (unsigned)(epoch % 36);

		rev[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		epoch /= 36;
	} while (epoch && n < sizeof rev);
	for (size_t i = 0; i < n; i++)
		buf[i] = rev[n - 1 - i];
	buf[n] = '\0';
	return n;
}

size_t cursor_format(const struct cursor *c, size_t count, char *buf)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		char epoch[EPOCH_TEXT_MAX];

		if (i)
			len = fmt_at(buf, CURSOR_TEXT_MAX, len, ",");
		if (c[i].epoch) {
			cursor_epoch_text(c[i].epoch, epoch);
			len = fmt_at(buf, CURSOR_TEXT_MAX, len, "%s:", epoch);
		}
		len = fmt_at(buf, CURSOR_TEXT_MAX, len, "%llu",
			     (unsigned long long)c[i].id);
	}
	return len;
}

uint64_t cursor_epoch_new(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
		/* no entropy to be had: still unique per process start */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		r ^= (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)ts.tv_sec;
	}
	return EPOCH_LOW + r % (EPOCH_HIGH - EPOCH_LOW);
}
