/* notify.h: tells the service manager how the gateway is doing
 * (systemd's Type=notify, through sd_notify). Without NOTIFY_SOCKET in
 * the environment, or when built --without-systemd, every call does
 * nothing. */
#ifndef ANYPUSH_NOTIFY_H
#define ANYPUSH_NOTIFY_H

/* States */
/* Every part is started and the port is listening. */
void notify_ready(void);
/* The orderly stop has begun. */
void notify_stopping(void);

#endif
