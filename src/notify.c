/* The gateway's state for systemd. READY=1 is sent only once server_start
 * has returned, so a unit ordered After=anypush.service finds the port
 * already accepting. */
#include "notify.h"

#include "log.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define LOG_PREFIX "notify"

#ifdef HAVE_LIBSYSTEMD
/* sd_notify answers 0 when there is no NOTIFY_SOCKET: not an error */
static void send_state(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0)
		log_warn("cannot tell systemd '%s': error %d", state, -rc);
}

void notify_ready(void)
{
	send_state("READY=1\nSTATUS=listening");
}

void notify_stopping(void)
{
	send_state("STOPPING=1");
}
#else
void notify_ready(void)
{
}

void notify_stopping(void)
{
}
#endif
