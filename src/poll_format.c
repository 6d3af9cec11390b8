/* Every length returned here comes from fmt_at, so it never exceeds what
 * was written, whatever the buffer. */
#include "poll_format.h"

#include "bus.h"
#include "cursor.h"
#include "fmt.h"
#include "validate.h"

/* Room for one gap entry. */
#define GAP_TEXT_MAX (CHANNEL_NAME_MAX + EPOCH_TEXT_MAX + 100)

size_t poll_format_tail_cap(size_t count)
{
	return CURSOR_TEXT_MAX + 64 + count * GAP_TEXT_MAX + 8;
}

size_t poll_format_tail(char *buf, size_t cap, const char *next,
			const struct channel_list *chs,
			const struct bus_item *items, size_t count, bool more)
{
	size_t n = fmt_at(buf, cap, 0, "],\"next\":\"%s\"", next), gaps = 0;

	/* every gap names its channel, so a client of several channels
	 * knows which one lost history */
	for (size_t i = 0; i < count; i++) {
		const struct bus_item *it = &items[i];
		char epoch[EPOCH_TEXT_MAX];

		if (it->msg != NULL || it->skip)
			continue;
		cursor_epoch_text(it->epoch, epoch);
		n = fmt_at(buf, cap, n,
			   "%s{\"channel\":\"%.*s\",\"last_seen\":%llu,"
			   "\"cursor\":%llu,\"epoch\":\"%s\"}",
			   gaps++ ? "," : ",\"gap\":true,\"gaps\":[",
			   (int)chs->len[it->tap], chs->name[it->tap],
			   (unsigned long long)it->gap_last,
			   (unsigned long long)it->cursor, epoch);
	}
	if (gaps)
		n = fmt_at(buf, cap, n, "]");
	return fmt_at(buf, cap, n, "%s}", more ? ",\"more\":true" : "");
}
