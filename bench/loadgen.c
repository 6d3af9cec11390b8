/* loadgen: single-threaded epoll load generator for anypush and its peers
 * (Nchan, Socket.IO).  It subscribes over short polling, long polling, SSE
 * or WebSocket, publishes over HTTP at a target rate, and accounts for every
 * message by the sequence number and send timestamp carried in its data:
 *   {"seq":N,"t":MICROS,"pad":"xxx..."}
 * One JSON line per run on stdout, plus a human line on stderr.
 * Loopback only: the host is always 127.0.0.1.  Every phase is bounded in
 * time (--max-time is a hard stop).  See bench/README or `loadgen --help`. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "lg_util.h"

enum { SRV_ANYPUSH, SRV_NCHAN, SRV_SIO };
enum { T_POLL, T_LONGPOLL, T_SSE, T_WS, T_MIX };
enum { C_CLOSED, C_CONNECTING, C_HEAD, C_BODY, C_WS, C_WAIT };
enum { B_NONE, B_CL, B_CHUNKED, B_EOF };

static const char *srv_names[] = {"anypush", "nchan", "socketio"};
static const char *tr_names[] = {"poll", "longpoll", "sse", "ws", "mix"};

typedef struct conn {
  int fd;
  int st;
  int is_pub;
  int idx;
  uint32_t gen;
  uint32_t evmask;
  lg_buf in, out, body;
  int status, bmode, close_after, stream;
  long long clen;
  int ck_phase;
  size_t ck_rem;
} conn;

typedef struct sub {
  conn c;
  int tr, ch;
  uint8_t *seen;
  uint32_t nseen, maxseq;
  uint64_t dup, ooo, bogus;
  uint32_t *lastq; /* per publisher connection: the order the server must keep */
  char cur[96];
  char lastmod[64], etag[64], sid[64];
  int has_cur, ready, opening, sio_step, need_pong, queued;
  uint64_t due;
  /* first open only: when the request was fully on the wire, and whether
   * the time to the server's first answer was recorded */
  uint64_t t_sent;
  int open_done;
  /* --hold after a stream run: how the connection ended (E_*), and the
   * code of the close frame a WebSocket got (0: none) */
  int end, ws_code;
} sub;

/* How a held connection ended while the server shut down.  Orderly: a
 * long poll's 200 reply, an SSE stream's end of body (chunked terminator),
 * a WebSocket close frame, a keep-alive connection closed while idle (a
 * short poller between polls).  Anything else (EOF or reset mid-response
 * or mid-stream, an error status, a close frame with no code) is E_BAD. */
enum { E_NONE, E_LP, E_SSE, E_WS, E_IDLE, E_BAD, E_NOTOPEN, E_N };
static const char *end_names[] = {"open", "lp_end", "sse_end", "ws_close", "idle_close",
                                  "bad_end", "not_open"};

/* ---- options ---- */
static struct {
  int srv, tr, subs, channels, count, size, pub_conns, idle;
  double hold; /* --idle: seconds to keep the connections open after the result */
  double idle_cpu; /* --idle: longest window in which the idle server's CPU is read */
  double rate, max_time, drain, interval_ms, drop_every_ms, drop_frac;
  /* several ports = several gateway nodes: subscriber i and publisher
   * connection i use ports[i % nports], so clients spread evenly */
  int port, ports[8], nports, pids[8], npids, open_conc, lp_timeout, warmup;
  const char *label, *prefix;
} O = {.srv = SRV_ANYPUSH, .tr = T_SSE, .subs = 10, .channels = 1, .count = 100,
       .size = 100, .pub_conns = 4, .rate = 100, .max_time = 120, .drain = 5,
       .interval_ms = 1000, .drop_frac = 0.1, .open_conc = 256, .lp_timeout = 25, .warmup = 20,
       .idle_cpu = 5, .label = "", .prefix = NULL, .port = 8080};

/* ---- global state ---- */
static int ep;
static sub *S;
static conn *P;
static uint32_t *chan_count; /* messages per channel */
static char **chan_name;
static lg_hist H;
static uint64_t g_delivered, g_rx, g_tx, g_reqs, g_errors, g_gaps, g_drops,
    g_reconnects, g_server_closes, g_pub_sent, g_pub_acked, g_pub_err,
    g_pub_bytes, g_pongs;
static int g_ready, g_opening;
/* time from a subscriber's first request being on the wire to the server's
 * answer that makes it ready (welcome, 101, first poll reply) */
static lg_hist HO;
static int g_open_slow; /* of those, over 1 s */
static uint64_t g_last_delivery_us;
static int *connect_q, cq_head, cq_tail, cq_n; /* subs waiting to (re)connect */
static int *poll_q, pq_head, pq_tail, pq_n;    /* subs waiting for interval */
/* --hold after a stream run: no new requests, no reconnects; each end is
 * counted by kind (E_*), close frames by code */
static int g_hold;
static uint64_t g_end[E_N], g_ws_1001, g_last_end_us;
static const char *WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* ---- epoll plumbing ---- */
static uint64_t ev_key(conn *c) {
  return ((uint64_t)c->gen << 33) | ((uint64_t)c->is_pub << 32) |
         (uint32_t)c->idx;
}

static void ep_set(conn *c, uint32_t mask) {
  if (c->fd < 0 || c->evmask == mask) return;
  struct epoll_event e = {.events = mask, .data.u64 = ev_key(c)};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll mod: %s", strerror(errno));
  c->evmask = mask;
}

static void conn_reset_parse(conn *c) {
  c->status = 0;
  c->bmode = B_NONE;
  c->close_after = 0;
  c->clen = -1;
  c->ck_phase = 0;
  c->ck_rem = 0;
  c->stream = 0;
  lg_buf_clear(&c->body);
}

static void conn_close(conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->st = C_CLOSED;
  c->gen++;
  c->evmask = 0;
  lg_buf_clear(&c->in);
  lg_buf_clear(&c->out);
  conn_reset_parse(c);
}

static int conn_open(conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int port = O.ports[c->idx % O.nports];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(0x7f000001);
  int r = connect(fd, (struct sockaddr *)&a, sizeof a);
  if (r < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  c->fd = fd;
  c->gen++;
  c->st = C_CONNECTING;
  c->evmask = EPOLLIN | EPOLLOUT;
  struct epoll_event e = {.events = c->evmask, .data.u64 = ev_key(c)};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll add: %s", strerror(errno));
  return 0;
}

/* write what we can; returns -1 on a dead socket */
static int conn_flush(conn *c) {
  if (c->st == C_CONNECTING) return 0;
  while (c->out.off < c->out.len) {
    ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return -1;
    }
    c->out.off += (size_t)n;
    if (c->is_pub)
      g_pub_bytes += (uint64_t)n;
    else
      g_tx += (uint64_t)n;
  }
  uint32_t m = EPOLLIN | (c->out.off < c->out.len ? EPOLLOUT : 0);
  if (c->out.off >= c->out.len) lg_buf_clear(&c->out);
  ep_set(c, m);
  return 0;
}

/* ---- HTTP response head ---- */
static int hdr_is(const char *line, size_t n, const char *name, const char **val) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) || line[k] != ':') return 0;
  const char *v = line + k + 1;
  while (*v == ' ') v++;
  *val = v;
  return 1;
}

static void copy_hval(char *dst, size_t cap, const char *v, const char *eol) {
  size_t n = (size_t)(eol - v);
  while (n && (v[n - 1] == '\r' || v[n - 1] == ' ')) n--;
  if (n >= cap) n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = 0;
}

/* 1 = head parsed, 0 = need more, -1 = error */
static int parse_head(conn *c, sub *s) {
  char *p = c->in.p + c->in.off;
  size_t avail = c->in.len - c->in.off;
  char *end = memmem(p, avail, "\r\n\r\n", 4);
  if (!end) return avail > 65536 ? -1 : 0;
  if (strncmp(p, "HTTP/1.", 7)) return -1;
  c->status = atoi(p + 9);
  c->clen = -1;
  c->bmode = B_NONE;
  c->close_after = (p[7] == '0');
  char *line = memchr(p, '\n', (size_t)(end - p)) + 1;
  while (line < end + 2) {
    char *eol = memchr(line, '\n', (size_t)(end + 4 - line));
    if (!eol) break;
    size_t n = (size_t)(eol - line);
    const char *v;
    if (hdr_is(line, n, "content-length", &v))
      c->clen = atoll(v);
    else if (hdr_is(line, n, "transfer-encoding", &v))
      c->bmode = strncasecmp(v, "chunked", 7) ? c->bmode : B_CHUNKED;
    else if (hdr_is(line, n, "connection", &v))
      c->close_after = !strncasecmp(v, "close", 5) ? 1 : c->close_after;
    else if (s && hdr_is(line, n, "last-modified", &v))
      copy_hval(s->lastmod, sizeof s->lastmod, v, eol);
    else if (s && hdr_is(line, n, "etag", &v))
      copy_hval(s->etag, sizeof s->etag, v, eol);
    else if (s && O.srv == SRV_ANYPUSH && hdr_is(line, n, "x-client-id", &v))
      copy_hval(s->sid, sizeof s->sid, v, eol); /* sent back as ?client= */
    line = eol + 1;
  }
  if (c->bmode != B_CHUNKED) c->bmode = c->clen >= 0 ? B_CL : B_EOF;
  if (c->status == 304 || c->status == 204 || c->status == 101) {
    c->bmode = B_CL;
    c->clen = 0;
  }
  c->in.off += (size_t)(end + 4 - p);
  lg_buf_clear(&c->body);
  return 1;
}

/* move body bytes from in to body; 1 = body complete, 0 = need more, -1 err */
static int read_body(conn *c) {
  for (;;) {
    char *p = c->in.p + c->in.off;
    size_t avail = c->in.len - c->in.off;
    if (c->bmode == B_CL) {
      size_t take = avail < (size_t)c->clen ? avail : (size_t)c->clen;
      if (take) lg_buf_add(&c->body, p, take);
      c->in.off += take;
      c->clen -= (long long)take;
      return c->clen == 0;
    }
    if (c->bmode == B_EOF) {
      if (avail) lg_buf_add(&c->body, p, avail);
      c->in.off += avail;
      return 0;
    }
    /* chunked */
    if (c->ck_phase == 0) {
      char *nl = memchr(p, '\n', avail);
      if (!nl) return avail > 1024 ? -1 : 0;
      size_t sz = strtoul(p, NULL, 16);
      c->in.off += (size_t)(nl - p + 1);
      if (sz == 0) {
        c->ck_phase = 3;
      } else {
        c->ck_rem = sz;
        c->ck_phase = 1;
      }
    } else if (c->ck_phase == 1) {
      if (!avail) return 0;
      size_t take = avail < c->ck_rem ? avail : c->ck_rem;
      lg_buf_add(&c->body, p, take);
      c->in.off += take;
      c->ck_rem -= take;
      if (!c->ck_rem) c->ck_phase = 2;
    } else if (c->ck_phase == 2) {
      if (avail < 2) return 0;
      c->in.off += 2;
      c->ck_phase = 0;
    } else {
      char *nl = memchr(p, '\n', avail);
      if (!nl) return 0;
      c->in.off += (size_t)(nl - p + 1);
      if (nl - p <= 1) {
        c->ck_phase = 0;
        return 1;
      }
    }
  }
}

/* ---- accounting ---- */
static void record(sub *s, uint32_t seq, uint64_t t, uint32_t pc, uint32_t q, uint64_t now) {
  if (seq == 0) return; /* warm-up message, not measured */
  if (seq > chan_count[s->ch]) {
    s->bogus++;
    return;
  }
  uint32_t i = seq - 1;
  if (s->seen[i >> 3] & (1u << (i & 7))) {
    s->dup++;
    return;
  }
  s->seen[i >> 3] |= (uint8_t)(1u << (i & 7));
  s->nseen++;
  /* one publisher connection waits for each ack, so its messages must
   * arrive in the order it sent them; several connections may race */
  if (pc < (uint32_t)O.pub_conns) {
    if (q < s->lastq[pc]) s->ooo++;
    else s->lastq[pc] = q;
  }
  if (seq > s->maxseq) s->maxseq = seq;
  lg_hist_add(&H, now > t ? now - t : 0);
  g_delivered++;
  g_last_delivery_us = now;
}

/* every {"seq":N,"t":T,...} in p[0..n) is one message */
static void scan_payload(sub *s, const char *p, size_t n) {
  uint64_t now = lg_now_us();
  const char *end = p + n, *q = p;
  while ((q = memmem(q, (size_t)(end - q), "\"seq\":", 6))) {
    q += 6;
    char *e;
    uint32_t seq = (uint32_t)strtoul(q, &e, 10);
    uint64_t tv = now;
    uint32_t pc = UINT32_MAX, pq = 0;
    /* fixed layout written by pub_send: "seq":N,"t":T,"p":C,"q":Q */
    if (!strncmp(e, ",\"t\":", 5)) {
      tv = strtoull(e + 5, &e, 10);
      if (!strncmp(e, ",\"p\":", 5)) {
        pc = (uint32_t)strtoul(e + 5, &e, 10);
        if (!strncmp(e, ",\"q\":", 5)) pq = (uint32_t)strtoul(e + 5, &e, 10);
      }
    }
    record(s, seq, tv, pc, pq, now);
  }
}

static void set_ready(sub *s) {
  if (s->ready) return;
  s->ready = 1;
  g_ready++;
  /* a long poll is ready once sent: the server answers only with data */
  if (!s->open_done && s->t_sent && s->tr != T_LONGPOLL) {
    uint64_t w = lg_now_us() - s->t_sent;
    lg_hist_add(&HO, w);
    g_open_slow += w > 1000000;
  }
  s->open_done = 1;
  if (s->opening) {
    s->opening = 0;
    g_opening--;
  }
}

/* ---- requests ---- */
static void sub_connect(sub *s);

static void push_connect(sub *s) {
  if (s->queued) return;
  s->queued = 1;
  connect_q[cq_tail] = (int)(s - S);
  cq_tail = (cq_tail + 1) % O.subs;
  cq_n++;
}

static void qprintf(conn *c, const char *fmt, ...) {
  char tmp[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof tmp) die("request too long");
  lg_buf_add(&c->out, tmp, (size_t)n);
}

static void ws_send(conn *c, int op, const char *d, size_t n) {
  unsigned char h[14];
  size_t hl = 2;
  h[0] = (unsigned char)(0x80 | op);
  if (n < 126) {
    h[1] = (unsigned char)(0x80 | n);
  } else if (n < 65536) {
    h[1] = 0x80 | 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    hl = 4;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  memcpy(h + hl, mask, 4);
  hl += 4;
  lg_buf_add(&c->out, h, hl);
  lg_buf_reserve(&c->out, n + 1);
  for (size_t i = 0; i < n; i++) c->out.p[c->out.len + i] = (char)(d[i] ^ mask[i & 3]);
  c->out.len += n;
}

static const char *HOST = "Host: 127.0.0.1\r\nUser-Agent: anypush-loadgen\r\n";

static void build_request(sub *s) {
  conn *c = &s->c;
  const char *ch = chan_name[s->ch];
  g_reqs++;
  if (O.srv == SRV_ANYPUSH) {
    /* a well-behaved client returns the id the gateway gave it */
    const char *cl = s->sid[0] ? "&client=" : "";
    switch (s->tr) {
    case T_POLL:
      qprintf(c, "GET /channels/%s?transport=poll&since=%s%s%s HTTP/1.1\r\n%s\r\n", ch, s->cur, cl,
              s->sid, HOST);
      break;
    case T_LONGPOLL:
      qprintf(c, "GET /channels/%s?transport=longpoll&since=%s&timeout=%d%s%s HTTP/1.1\r\n%s\r\n",
              ch, s->cur, O.lp_timeout, cl, s->sid, HOST);
      break;
    case T_SSE:
      qprintf(c,
              "GET /channels/%s?transport=sse%s%s HTTP/1.1\r\n%sAccept: text/event-stream\r\n"
              "Last-Event-ID: %s\r\n\r\n",
              ch, cl, s->sid, HOST, s->cur);
      break;
    case T_WS:
      qprintf(c,
              "GET /channels/%s?transport=ws&since=%s HTTP/1.1\r\n%sUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Protocol: anypush.v1\r\n\r\n",
              ch, s->cur, HOST, WS_KEY);
      break;
    }
  } else if (O.srv == SRV_NCHAN) {
    char cond[256] = "";
    if ((s->tr == T_POLL || s->tr == T_LONGPOLL) && s->lastmod[0])
      snprintf(cond, sizeof cond, "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n", s->lastmod,
               s->etag);
    switch (s->tr) {
    case T_POLL:
      qprintf(c, "GET /sub/poll?id=%s HTTP/1.1\r\n%s%s\r\n", ch, HOST, cond);
      break;
    case T_LONGPOLL:
      qprintf(c, "GET /sub/lp?id=%s HTTP/1.1\r\n%s%s\r\n", ch, HOST, cond);
      break;
    case T_SSE:
      if (s->has_cur) snprintf(cond, sizeof cond, "Last-Event-ID: %s\r\n", s->cur);
      qprintf(c, "GET /sub/es?id=%s HTTP/1.1\r\n%sAccept: text/event-stream\r\n%s\r\n", ch, HOST,
              cond);
      break;
    case T_WS:
      qprintf(c,
              "GET /sub/ws?id=%s%s%s HTTP/1.1\r\n%sUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Protocol: ws+meta.nchan\r\n\r\n",
              ch, s->has_cur ? "&last_event_id=" : "", s->has_cur ? s->cur : "", HOST, WS_KEY);
      break;
    }
  } else { /* socket.io, Engine.IO v4 */
    if (s->tr == T_WS) {
      qprintf(c,
              "GET /socket.io/?EIO=4&transport=websocket&ch=%s HTTP/1.1\r\n%sUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
              ch, HOST, WS_KEY);
    } else if (s->sio_step == 0) {
      qprintf(c, "GET /socket.io/?EIO=4&transport=polling&ch=%s HTTP/1.1\r\n%s\r\n", ch, HOST);
    } else if (s->sio_step == 1 || s->need_pong) {
      const char *b = s->sio_step == 1 ? "40" : "3";
      qprintf(c,
              "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\n%s"
              "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
              s->sid, HOST, strlen(b), b);
    } else {
      qprintf(c, "GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\n%s\r\n", s->sid,
              HOST);
    }
  }
}

/* send the next request of a request/response transport, opening the
 * connection first when needed */
static void sub_request(sub *s) {
  conn *c = &s->c;
  conn_reset_parse(c);
  if (c->fd < 0) {
    sub_connect(s);
    return;
  }
  build_request(s);
  c->st = C_HEAD;
  if (conn_flush(c) < 0) {
    conn_close(c);
    push_connect(s);
    return;
  }
  /* a held request counts as attached once it is on the wire */
  if (s->tr == T_LONGPOLL && O.srv != SRV_SIO) set_ready(s);
}

static void sub_connect(sub *s) {
  conn *c = &s->c;
  if (!s->ready && !s->opening) {
    s->opening = 1;
    g_opening++;
  }
  if (conn_open(c) < 0) {
    g_errors++;
    push_connect(s); /* retried from the queue */
    return;
  }
  conn_reset_parse(c);
  build_request(s);
}

/* --hold: the subscriber's connection ended, as `kind` says; it stays closed */
static void sub_end(sub *s, int kind) {
  conn_close(&s->c);
  if (s->end) return;
  s->end = kind;
  g_end[kind]++;
  g_last_end_us = lg_now_us();
}

/* a subscriber's connection was lost (drop, server close or error) */
static void sub_lost(sub *s, int count_reconnect) {
  if (g_hold) {
    sub_end(s, E_BAD);
    return;
  }
  conn_close(&s->c);
  if (!s->open_done) s->t_sent = 0;
  if (s->ready) {
    s->ready = 0;
    g_ready--;
  }
  if (O.srv == SRV_SIO) {
    s->sio_step = 0;
    s->need_pong = 0;
  }
  if (count_reconnect) g_reconnects++;
  push_connect(s);
}

static void schedule_poll(sub *s, double ms) {
  conn *c = &s->c;
  c->st = C_WAIT;
  if (ms <= 0) {
    sub_request(s);
    return;
  }
  s->due = lg_now_us() + (uint64_t)(ms * 1000.0);
  poll_q[pq_tail] = (int)(s - S);
  pq_tail = (pq_tail + 1) % O.subs;
  pq_n++;
}

/* ---- message handlers ---- */
/* a cursor ("17", "k3x9a2bq:17,4") at p, up to the first other byte; a
 * trailing comma belongs to the JSON around it */
static void copy_digits(char *dst, size_t cap, const char *p) {
  size_t n = 0;
  while (n + 1 < cap && ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'z') ||
                         p[n] == ',' || p[n] == ':')) {
    dst[n] = p[n];
    n++;
  }
  while (n > 0 && dst[n - 1] == ',') n--;
  dst[n] = 0;
}

static void on_ws_message(sub *s, char *p, size_t n) {
  conn *c = &s->c;
  if (O.srv == SRV_ANYPUSH) {
    if (n > 17 && !strncmp(p, "{\"type\":\"welcome\"", 17)) {
      set_ready(s);
      return;
    }
    if (memmem(p, n, "\"type\":\"gap\"", 12)) {
      g_gaps++;
      const char *q = memmem(p, n, "\"cursor\":", 9);
      if (q) copy_digits(s->cur, sizeof s->cur, q + 9);
      return;
    }
    scan_payload(s, p, n);
    /* the envelope's id is the last "id": of the frame */
    const char *last = NULL, *q = p;
    while ((q = memmem(q, (size_t)(p + n - q), "\"id\":", 5))) last = q, q += 5;
    if (last) copy_digits(s->cur, sizeof s->cur, last + 5);
  } else if (O.srv == SRV_NCHAN) {
    /* ws+meta.nchan: "id: ID\n[content-type: ..\n]\nDATA" */
    if (n > 4 && !strncmp(p, "id: ", 4)) {
      char *nl = memchr(p, '\n', n);
      if (nl) {
        size_t k = (size_t)(nl - p - 4);
        if (k >= sizeof s->cur) k = sizeof s->cur - 1;
        memcpy(s->cur, p + 4, k);
        s->cur[k] = 0;
        s->has_cur = 1;
      }
    }
    scan_payload(s, p, n);
  } else {
    if (n >= 1 && p[0] == '0') {
      ws_send(c, 1, "40", 2);
      conn_flush(c);
    } else if (n >= 2 && p[0] == '4' && p[1] == '0') {
      set_ready(s);
    } else if (n == 1 && p[0] == '2') {
      ws_send(c, 1, "3", 1);
      g_pongs++;
      conn_flush(c);
    } else if (n >= 2 && p[0] == '4' && p[1] == '2') {
      scan_payload(s, p, n);
    }
  }
}

/* 1 = progress possible, 0 = need more, -1 = connection lost */
static int parse_ws(sub *s) {
  conn *c = &s->c;
  for (;;) {
    unsigned char *p = (unsigned char *)c->in.p + c->in.off;
    size_t avail = c->in.len - c->in.off;
    if (avail < 2) return 0;
    int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
      if (avail < 4) return 0;
      len = ((uint64_t)p[2] << 8) | p[3];
      hl = 4;
    } else if (len == 127) {
      if (avail < 10) return 0;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
      hl = 10;
    }
    if (masked) hl += 4;
    if (avail < hl + len) {
      lg_buf_reserve(&c->in, hl + len - avail + 4096);
      return 0;
    }
    char *pl = (char *)p + hl;
    if (masked)
      for (uint64_t i = 0; i < len; i++) pl[i] ^= (char)p[hl - 4 + (i & 3)];
    c->in.off += hl + (size_t)len;
    if (op == 8) {
      /* the code, echoed back as RFC 6455 asks; the caller closes */
      s->ws_code = len >= 2 ? ((unsigned char)pl[0] << 8) | (unsigned char)pl[1] : 0;
      ws_send(c, 8, pl, len >= 2 ? 2 : 0);
      conn_flush(c);
      return -1;
    }
    if (op == 9) {
      ws_send(c, 10, pl, (size_t)len);
      conn_flush(c);
      continue;
    }
    if (op == 10) continue;
    if (op == 0 || !fin) { /* fragmented message */
      lg_buf_add(&c->body, pl, (size_t)len);
      if (fin) {
        on_ws_message(s, c->body.p, c->body.len);
        lg_buf_clear(&c->body);
      }
      continue;
    }
    char save = pl[len];
    pl[len] = 0;
    on_ws_message(s, pl, (size_t)len);
    pl[len] = save;
  }
}

/* SSE: process complete events in body */
static void parse_sse(sub *s) {
  conn *c = &s->c;
  for (;;) {
    /* nothing read yet: no buffer at all (memmem on NULL is undefined) */
    if (c->body.p == NULL || c->body.len - c->body.off < 2) return;
    char *p = c->body.p + c->body.off;
    size_t avail = c->body.len - c->body.off;
    char *end = memmem(p, avail, "\n\n", 2);
    if (!end) return;
    int is_gap = 0, is_welcome = 0;
    char *line = p;
    while (line < end + 1) {
      char *eol = memchr(line, '\n', (size_t)(end + 1 - line));
      size_t n = (size_t)(eol - line);
      if (n > 4 && !strncmp(line, "id: ", 4)) {
        size_t k = n - 4;
        if (k >= sizeof s->cur) k = sizeof s->cur - 1;
        memcpy(s->cur, line + 4, k);
        s->cur[k] = 0;
        s->has_cur = 1;
      } else if (n >= 10 && !strncmp(line, "event: gap", 10)) {
        is_gap = 1;
      } else if (n >= 14 && !strncmp(line, "event: welcome", 14)) {
        is_welcome = 1;
      } else if (n > 5 && !strncmp(line, "data:", 5) && !is_gap && !is_welcome) {
        scan_payload(s, line, n);
      }
      line = eol + 1;
    }
    if (is_gap) g_gaps++;
    if (is_welcome) set_ready(s);
    c->body.off += (size_t)(end + 2 - p);
  }
}

/* a full response body arrived on a request/response transport */
static void on_body(sub *s) {
  conn *c = &s->c;
  char *b = c->body.p ? c->body.p : (char *)"";
  size_t n = c->body.len;
  int reuse = !c->close_after;
  if (O.srv == SRV_SIO) {
    if (c->status != 200) {
      g_errors++;
      sub_lost(s, 0);
      return;
    }
    if (s->sio_step == 0) {
      const char *q = memmem(b, n, "\"sid\":\"", 7);
      if (!q) {
        g_errors++;
        sub_lost(s, 0);
        return;
      }
      copy_hval(s->sid, sizeof s->sid, q + 7, strchr(q + 7, '"'));
      s->sio_step = 1;
    } else if (s->sio_step == 1) {
      s->sio_step = 2; /* "ok" for our 40 */
    } else if (s->need_pong) {
      s->need_pong = 0;
    } else {
      /* packets separated by \x1e */
      char *q = b, *end = b + n;
      while (q < end) {
        char *sep = memchr(q, 0x1e, (size_t)(end - q));
        char *pe = sep ? sep : end;
        if (pe - q >= 2 && q[0] == '4' && q[1] == '0')
          set_ready(s);
        else if (pe - q == 1 && q[0] == '2')
          s->need_pong = 1, g_pongs++;
        else if (pe - q >= 2 && q[0] == '4' && q[1] == '2')
          scan_payload(s, q, (size_t)(pe - q));
        else if (pe - q >= 1 && q[0] == '1') {
          sub_lost(s, 0);
          return;
        }
        q = pe + 1;
      }
    }
    if (!reuse) conn_close(c);
    sub_request(s);
    return;
  }
  double wait = 0;
  if (g_hold && O.srv == SRV_ANYPUSH) {
    /* a long poll answered while held: the shutdown's reply; a poll's
     * answer leaves the keep-alive connection idle, asking nothing more */
    if (c->status != 200)
      sub_end(s, E_BAD);
    else if (s->tr == T_LONGPOLL)
      sub_end(s, memmem(b, n, "\"messages\":[]", 13) ? E_LP : E_BAD);
    else if (!reuse)
      sub_end(s, E_IDLE);
    return;
  }
  if (O.srv == SRV_ANYPUSH) {
    if (c->status == 200) {
      scan_payload(s, b, n);
      if (memmem(b, n, "\"gap\":true", 10)) g_gaps++;
      const char *q = memmem(b, n, "\"next\":\"", 8);
      if (q) copy_digits(s->cur, sizeof s->cur, q + 8);
      if (s->tr == T_POLL) {
        set_ready(s);
        wait = memmem(b, n, "\"more\":true", 11) ? 0 : O.interval_ms;
      }
    } else {
      g_errors++;
      wait = 100;
    }
  } else { /* nchan: one message per 200, 304 = nothing new */
    if (c->status == 200) {
      scan_payload(s, b, n);
      if (s->tr == T_POLL) set_ready(s);
    } else if (c->status == 304) {
      if (s->tr == T_POLL) {
        set_ready(s);
        wait = O.interval_ms;
      }
    } else if (c->status == 408) {
      /* long-poll timeout: ask again */
    } else {
      g_errors++;
      wait = 100;
    }
  }
  if (!reuse) conn_close(c);
  if (wait > 0)
    schedule_poll(s, wait);
  else
    sub_request(s);
}

/* run the parser over what is in the input buffer */
static void sub_process(sub *s) {
  conn *c = &s->c;
  for (;;) {
    if (c->st == C_HEAD) {
      int r = parse_head(c, s);
      if (r == 0) return;
      if (r < 0) {
        g_errors++;
        sub_lost(s, 0);
        return;
      }
      if (c->status == 101) {
        c->st = C_WS;
        if (O.srv == SRV_NCHAN) set_ready(s);
        continue;
      }
      c->st = C_BODY;
      c->stream = (s->tr == T_SSE && c->status == 200);
      if (c->stream && O.srv == SRV_NCHAN) set_ready(s);
      continue;
    }
    if (c->st == C_BODY) {
      int r = read_body(c);
      if (r < 0) {
        g_errors++;
        sub_lost(s, 0);
        return;
      }
      if (c->stream) {
        parse_sse(s);
        if (r == 1 && g_hold) {
          sub_end(s, E_SSE);
        } else if (r == 1) { /* stream ended by the server: resume with cursor */
          g_server_closes++;
          sub_lost(s, 1);
        }
        return;
      }
      if (r == 0) return;
      c->st = C_WAIT;
      on_body(s);
      return;
    }
    if (c->st == C_WS) {
      int r = parse_ws(s);
      if (r < 0 && g_hold) {
        sub_end(s, s->ws_code > 0 ? E_WS : E_BAD);
        g_ws_1001 += s->ws_code == 1001;
      } else if (r < 0) {
        g_server_closes++;
        sub_lost(s, 1);
      }
      return;
    }
    return; /* C_WAIT: unexpected bytes are left for the next response */
  }
}

static void sub_event(sub *s, uint32_t evs) {
  conn *c = &s->c;
  if (c->st == C_CONNECTING && (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      g_errors++;
      sub_lost(s, 0);
      return;
    }
    c->st = C_HEAD;
    if (conn_flush(c) < 0) {
      g_errors++;
      sub_lost(s, 0);
      return;
    }
    if (!s->open_done && !s->t_sent && c->out.len == 0) s->t_sent = lg_now_us();
    if (s->tr == T_LONGPOLL && O.srv != SRV_SIO) set_ready(s);
  } else if (evs & EPOLLOUT) {
    if (conn_flush(c) < 0) {
      sub_lost(s, 1);
      return;
    }
    if (!s->open_done && !s->t_sent && c->out.len == 0) s->t_sent = lg_now_us();
  }
  if (evs & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    lg_buf_reserve(&c->in, 65536);
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      if (c->st == C_BODY && c->bmode == B_EOF && !c->stream) {
        c->st = C_WAIT;
        c->close_after = 1;
        on_body(s);
        return;
      }
      if (c->st == C_WAIT) { /* keep-alive closed while idle: reopen later */
        if (g_hold)
          sub_end(s, E_IDLE);
        else
          conn_close(c);
        return;
      }
      g_server_closes++;
      sub_lost(s, 1);
      return;
    }
    g_rx += (uint64_t)n;
    c->in.len += (size_t)n;
    c->in.p[c->in.len] = 0;
    sub_process(s);
  }
}

/* ---- publisher ---- */
static char *pad;
static int pub_next_free(void) {
  for (int i = 0; i < O.pub_conns; i++)
    if (P[i].st == C_WAIT) return i;
  return -1;
}

static void pub_send(conn *c, uint64_t k, int warm) {
  int ch = (int)(k % (uint64_t)O.channels);
  uint32_t seq = warm ? 0 : (uint32_t)(k / (uint64_t)O.channels + 1);
  char body[128];
  static uint32_t pq[64];
  int bl = snprintf(body, sizeof body, "{\"seq\":%u,\"t\":%llu,\"p\":%d,\"q\":%u,\"pad\":\"", seq,
                    (unsigned long long)lg_now_us(), c->idx, ++pq[c->idx & 63]);
  size_t padn = (size_t)O.size > (size_t)bl + 2 ? (size_t)O.size - (size_t)bl - 2 : 1;
  size_t total = (size_t)bl + padn + 2;
  const char *path = O.srv == SRV_ANYPUSH ? "/channels/" : O.srv == SRV_NCHAN ? "/pub?id=" : "/publish?ch=";
  qprintf(c, "POST %s%s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
          path, chan_name[ch], HOST, total);
  lg_buf_add(&c->out, body, (size_t)bl);
  lg_buf_add(&c->out, pad, padn);
  lg_buf_add(&c->out, "\"}", 2);
  c->st = C_HEAD;
  conn_reset_parse(c);
  g_pub_sent++;
  if (conn_flush(c) < 0) die("publisher connection lost");
}

static void pub_event(conn *c, uint32_t evs) {
  if (c->st == C_CONNECTING && (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) die("publisher connect: %s", strerror(err));
    c->st = C_WAIT;
    ep_set(c, EPOLLIN);
    return;
  }
  if (evs & EPOLLOUT) conn_flush(c);
  if (!(evs & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  lg_buf_reserve(&c->in, 16384);
  ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    int was_busy = c->st != C_WAIT;
    conn_close(c);
    if (was_busy) g_pub_err++;
    if (conn_open(c) < 0) die("publisher reconnect failed");
    return;
  }
  c->in.len += (size_t)n;
  c->in.p[c->in.len] = 0;
  for (;;) {
    if (c->st == C_HEAD) {
      int r = parse_head(c, NULL);
      if (r < 0) die("bad publish reply");
      if (r == 0) return;
      c->st = C_BODY;
    }
    if (c->st == C_BODY) {
      int r = read_body(c);
      if (r <= 0) return;
      g_pub_acked++;
      if (c->status < 200 || c->status > 299) {
        g_pub_err++;
        if (g_pub_err < 5)
          fprintf(stderr, "loadgen: publish answered %d: %.200s\n", c->status, c->body.p);
      }
      c->st = C_WAIT;
      if (c->close_after) {
        conn_close(c);
        if (conn_open(c) < 0) die("publisher reconnect failed");
      }
      return;
    }
    return;
  }
}

/* ---- blocking helper for readiness checks (between phases) ---- */
static long server_held_count_at(int port) {
  const char *path = O.srv == SRV_ANYPUSH ? "/metrics" : O.srv == SRV_NCHAN ? "/nchan_status" : "/stats";
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(0x7f000001);
  struct timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  char req[256];
  int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (write(fd, req, (size_t)rl) != rl) {
    close(fd);
    return -1;
  }
  static char buf[1 << 16];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  close(fd);
  buf[got] = 0;
  long total = 0;
  if (O.srv == SRV_ANYPUSH) {
    const char *q = buf;
    while ((q = strstr(q, "\nanypush_subscribers{"))) {
      const char *sp = strchr(q, '}');
      if (!sp) break;
      total += atol(sp + 1);
      q = sp;
    }
    return total;
  }
  const char *q = strstr(buf, O.srv == SRV_NCHAN ? "subscribers: " : "\"clients\":");
  if (!q) return -1;
  return atol(strchr(q, O.srv == SRV_NCHAN ? ' ' : ':') + 1);
}

/* summed over the nodes: each counts only the subscribers it holds */
static long server_held_count(void) {
  long total = 0;
  for (int i = 0; i < O.nports; i++) {
    long n = server_held_count_at(O.ports[i]);
    if (n < 0) return -1;
    total += n;
  }
  return total;
}

/* ---- main loop ---- */
static uint64_t g_deadline_us;

static void loop_once(int timeout_ms) {
  static struct epoll_event evs[1024];
  /* start queued connects within the concurrency budget */
  while (cq_n > 0 && g_opening < O.open_conc && !g_hold) {
    sub *s = &S[connect_q[cq_head]];
    cq_head = (cq_head + 1) % O.subs;
    cq_n--;
    s->queued = 0;
    if (s->c.fd >= 0) continue;
    sub_connect(s);
  }
  uint64_t now = lg_now_us();
  while (pq_n > 0 && (g_hold || S[poll_q[pq_head]].due <= now)) {
    sub *s = &S[poll_q[pq_head]];
    pq_head = (pq_head + 1) % O.subs;
    pq_n--;
    if (!g_hold && (s->c.st == C_WAIT || s->c.st == C_CLOSED)) sub_request(s);
  }
  if (pq_n > 0) {
    int until = (int)((S[poll_q[pq_head]].due - now) / 1000) + 1;
    if (until < timeout_ms) timeout_ms = until;
  }
  if (cq_n > 0 && g_opening < O.open_conc && !g_hold) timeout_ms = 0;
  int n = epoll_wait(ep, evs, 1024, timeout_ms);
  for (int i = 0; i < n; i++) {
    uint64_t k = evs[i].data.u64;
    uint32_t idx = (uint32_t)k, gen = (uint32_t)(k >> 33);
    int is_pub = (int)((k >> 32) & 1);
    conn *c = is_pub ? &P[idx] : &S[idx].c;
    if ((c->gen & 0x7fffffff) != (gen & 0x7fffffff) || c->fd < 0) continue;
    if (is_pub)
      pub_event(c, evs[i].events);
    else
      sub_event(&S[idx], evs[i].events);
  }
  if (lg_now_us() > g_deadline_us) {
    fprintf(stderr, "loadgen: --max-time reached, stopping\n");
    g_deadline_us = UINT64_MAX; /* report what we have */
  }
}

static void run_for(double sec) {
  uint64_t end = lg_now_us() + (uint64_t)(sec * 1e6);
  while (lg_now_us() < end && g_deadline_us != UINT64_MAX) loop_once(10);
}

typedef struct snap {
  long long ticks, sched_ns, rss_kb;
  long long pid_sched_ns[8]; /* per --pid: which process the CPU went to */
  double self_cpu;
  uint64_t t;
} snap;

static snap take_snap(void) {
  snap s = {.t = lg_now_us()};
  for (int i = 0; i < O.npids; i++) {
    long long t = lg_proc_ticks(O.pids[i]), n = lg_proc_sched_ns(O.pids[i]),
              r = lg_proc_rss_kb(O.pids[i]);
    if (t > 0) s.ticks += t;
    if (n > 0) s.sched_ns += n;
    s.pid_sched_ns[i] = n > 0 ? n : 0;
    if (r > 0) s.rss_kb += r;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  s.self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  return s;
}

/* held subscriber: connected, and its request (if any) is on the wire */
static int sub_settled(const sub *s) {
  const conn *c = &s->c;
  if (c->fd < 0 || c->out.off < c->out.len) return 0;
  switch (s->tr) {
  case T_POLL: return c->st == C_WAIT;
  case T_LONGPOLL: return c->st == C_HEAD;
  case T_SSE: return c->st == C_BODY && c->stream;
  default: return c->st == C_WS;
  }
}

/* --hold after a stream run: keep every subscriber connected, ask nothing
 * more (a poller's answer in flight is awaited, then its keep-alive
 * connection stays idle), print a "holding" line once they all are so,
 * then count how each connection ends (another tool stops the server
 * meanwhile), until none is left or --hold seconds pass; one "hold" line.
 * The publisher connections close first: they are not subscribers. */
static uint64_t tr_sum(uint64_t (*tr_ends)[E_N], int k) {
  uint64_t n = 0;
  for (int t = 0; t < 4; t++) n += tr_ends[t][k];
  return n;
}

static void hold_phase(void) {
  g_hold = 1;
  for (int i = 0; i < O.pub_conns; i++) conn_close(&P[i]);
  uint64_t t0 = lg_now_us(), end = t0 + (uint64_t)(O.hold * 1e6);
  int settled = 0;
  while (lg_now_us() < end && g_deadline_us != UINT64_MAX) {
    settled = 0;
    for (int i = 0; i < O.subs; i++) settled += sub_settled(&S[i]);
    if (settled == O.subs) break;
    loop_once(10);
  }
  int open = 0;
  for (int i = 0; i < O.subs; i++) {
    if (S[i].c.fd >= 0)
      open++;
    else
      sub_end(&S[i], E_NOTOPEN);
  }
  uint64_t t_holding = lg_now_us();
  printf("{\"mode\":\"holding\",\"subs\":%d,\"open\":%d,\"settled\":%d,\"settle_s\":%.2f}\n",
         O.subs, open, settled, (double)(t_holding - t0) / 1e6);
  fflush(stdout);
  g_last_end_us = 0;
  while (lg_now_us() < end && g_deadline_us != UINT64_MAX) {
    uint64_t ended = 0;
    for (int k = E_LP; k < E_N; k++) ended += g_end[k];
    if (ended >= (uint64_t)O.subs) break;
    loop_once(10);
  }
  /* per transport, what ended how: tr_ends[transport][E_*] */
  uint64_t tr_ends[4][E_N] = {{0}};
  for (int i = 0; i < O.subs; i++) tr_ends[S[i].tr & 3][S[i].end]++;
  printf("{\"mode\":\"hold\",\"subs\":%d,\"open_at_hold\":%d", O.subs, open);
  for (int k = 0; k < E_N; k++) printf(",\"%s\":%llu", end_names[k], (unsigned long long)tr_sum(tr_ends, k));
  printf(",\"ws_close_1001\":%llu,\"last_end_s\":%.3f,\"by_transport\":{",
         (unsigned long long)g_ws_1001,
         g_last_end_us > t_holding ? (double)(g_last_end_us - t_holding) / 1e6 : 0.0);
  for (int t = 0; t < 4; t++) {
    printf("%s\"%s\":{", t ? "," : "", tr_names[t]);
    for (int k = 0; k < E_N; k++)
      printf("%s\"%s\":%llu", k ? "," : "", end_names[k], (unsigned long long)tr_ends[t][k]);
    printf("}");
  }
  printf("},\"label\":\"%s\"}\n", O.label);
  fflush(stdout);
}

static void usage(void) {
  puts("usage: loadgen [options]\n"
       "  --server anypush|nchan|socketio   URL templates and framing [anypush]\n"
       "  --port N[,N..]      server port(s) on 127.0.0.1 [8080]; several: one per node,\n"
       "                      subscriber and publisher connection i use the (i mod n)th\n"
       "  --pid PID[,PID..]   server processes to read CPU and RSS from (/proc)\n"
       "  --transport poll|longpoll|sse|ws|mix   subscriber transport [sse]\n"
       "  --subs N            subscribers [10]      --channels K   channels [1]\n"
       "  --count M           messages to publish, over all channels [100]\n"
       "  --rate R            publishes per second, 0 = as fast as --pub-conns allow [100]\n"
       "  --size B            message data size in bytes [100]\n"
       "  --pub-conns N       keep-alive publisher connections [4]\n"
       "  --interval MS       short-poll interval after each reply [1000]\n"
       "  --lp-timeout S      long-poll hold asked of anypush [25]\n"
       "  --idle              open the subscribers, measure RSS per connection, no publishing\n"
       "  --idle-cpu S        with --idle: then read the server's CPU over at most S seconds,\n"
       "                      ending 1 s before the first connection's 15th second of silence\n"
       "                      (anypush's and Nchan's first heartbeat) [5]\n"
       "  --hold S            keep them open S seconds after printing the result, so another\n"
       "                      tool can inspect (--idle) or stop (a stream run) the server\n"
       "                      meanwhile; after a stream run, no new request is made: a\n"
       "                      \"holding\" line once all are connected and idle, then a \"hold\"\n"
       "                      line counting how each connection ended (orderly per transport:\n"
       "                      lp_end, sse_end, ws_close, idle_close; else bad_end) [0]\n"
       "  --drop-every MS     drop --drop-frac of the subscribers every MS ms while publishing,\n"
       "                      they reconnect at once with their cursor [off]\n"
       "  --drop-frac F       fraction dropped each time, 1 = all (a storm) [0.1]\n"
       "  --drain S           wait this long after the last publish ack [5]\n"
       "  --open-conc N       connections opening at once [256]\n"
       "  --max-time S        hard stop for the whole run [120]\n"
       "  --prefix STR        channel name prefix [bench-PID]\n"
       "  --warmup N          unmeasured messages (seq 0) before the measured ones [20]\n"
       "  --label STR         copied into the JSON line");
}

static int parse_tr(const char *v) {
  for (int i = 0; i <= T_MIX; i++)
    if (!strcmp(v, tr_names[i])) return i;
  die("unknown transport %s", v);
  return 0;
}

int main(int argc, char **argv) {
  static struct option lo[] = {
      {"server", 1, 0, 's'},    {"port", 1, 0, 'p'},       {"pid", 1, 0, 'P'},
      {"transport", 1, 0, 't'}, {"subs", 1, 0, 'n'},       {"channels", 1, 0, 'k'},
      {"count", 1, 0, 'm'},     {"rate", 1, 0, 'r'},       {"size", 1, 0, 'z'},
      {"pub-conns", 1, 0, 'c'}, {"interval", 1, 0, 'i'},   {"idle", 0, 0, 'I'},
      {"drop-every", 1, 0, 'd'}, {"drop-frac", 1, 0, 'f'}, {"drain", 1, 0, 'D'},
      {"max-time", 1, 0, 'T'},  {"label", 1, 0, 'L'},      {"open-conc", 1, 0, 'o'},
      {"prefix", 1, 0, 'x'},    {"lp-timeout", 1, 0, 'l'}, {"help", 0, 0, 'h'},
      {"warmup", 1, 0, 'W'},    {"hold", 1, 0, 'H'},
      {"idle-cpu", 1, 0, 'U'},  {0, 0, 0, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (opt) {
    case 's':
      O.srv = !strcmp(optarg, "nchan") ? SRV_NCHAN : !strcmp(optarg, "socketio") ? SRV_SIO : SRV_ANYPUSH;
      if (O.srv == SRV_ANYPUSH && strcmp(optarg, "anypush")) die("unknown server %s", optarg);
      break;
    case 'p': {
      char *tok, *save = NULL, *dup = strdup(optarg);
      O.nports = 0;
      for (tok = strtok_r(dup, ",", &save); tok && O.nports < 8; tok = strtok_r(NULL, ",", &save))
        O.ports[O.nports++] = atoi(tok);
      free(dup);
      break;
    }
    case 'P': {
      char *tok, *save = NULL, *dup = strdup(optarg);
      for (tok = strtok_r(dup, ",", &save); tok && O.npids < 8; tok = strtok_r(NULL, ",", &save))
        O.pids[O.npids++] = atoi(tok);
      free(dup);
      break;
    }
    case 't': O.tr = parse_tr(optarg); break;
    case 'n': O.subs = atoi(optarg); break;
    case 'k': O.channels = atoi(optarg); break;
    case 'm': O.count = atoi(optarg); break;
    case 'r': O.rate = atof(optarg); break;
    case 'z': O.size = atoi(optarg); break;
    case 'c': O.pub_conns = atoi(optarg); break;
    case 'i': O.interval_ms = atof(optarg); break;
    case 'I': O.idle = 1; break;
    case 'd': O.drop_every_ms = atof(optarg); break;
    case 'f': O.drop_frac = atof(optarg); break;
    case 'D': O.drain = atof(optarg); break;
    case 'T': O.max_time = atof(optarg); break;
    case 'L': O.label = optarg; break;
    case 'o': O.open_conc = atoi(optarg); break;
    case 'x': O.prefix = optarg; break;
    case 'l': O.lp_timeout = atoi(optarg); break;
    case 'W': O.warmup = atoi(optarg); break;
    case 'H': O.hold = atof(optarg); break;
    case 'U': O.idle_cpu = atof(optarg); break;
    case 'h': usage(); return 0;
    default: usage(); return 2;
    }
  }
  if (!O.nports) O.ports[O.nports++] = O.port;
  O.port = O.ports[0];
  if (O.subs < 1 || O.channels < 1 || O.count < 0 || O.pub_conns < 1 || O.size < 40 ||
      O.channels > O.subs || O.pub_conns > 64)
    die("bad numbers (subs>=1, 1<=channels<=subs, size>=40)");
  if (O.srv == SRV_SIO && (O.tr == T_POLL || O.tr == T_SSE))
    die("socket.io has no %s transport", tr_names[O.tr]);
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (!getrlimit(RLIMIT_NOFILE, &rl)) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  uint64_t start_us = lg_now_us();
  g_deadline_us = start_us + (uint64_t)(O.max_time * 1e6);
  ep = epoll_create1(EPOLL_CLOEXEC);
  char pfx[64];
  if (!O.prefix) {
    snprintf(pfx, sizeof pfx, "bench-%d-%llu", (int)getpid(), (unsigned long long)(start_us % 100000));
    O.prefix = pfx;
  }
  chan_name = calloc((size_t)O.channels, sizeof *chan_name);
  chan_count = calloc((size_t)O.channels, sizeof *chan_count);
  for (int i = 0; i < O.channels; i++) {
    char b[160];
    snprintf(b, sizeof b, "%s-%d", O.prefix, i);
    chan_name[i] = strdup(b);
    chan_count[i] = (uint32_t)(O.count / O.channels + (i < O.count % O.channels ? 1 : 0));
  }
  pad = malloc((size_t)O.size + 1);
  memset(pad, 'x', (size_t)O.size);
  S = calloc((size_t)O.subs, sizeof *S);
  connect_q = calloc((size_t)O.subs, sizeof(int));
  poll_q = calloc((size_t)O.subs, sizeof(int));
  int held = 0;
  for (int i = 0; i < O.subs; i++) {
    sub *s = &S[i];
    s->c.fd = -1;
    s->c.idx = i;
    s->ch = i % O.channels;
    s->tr = O.tr == T_MIX ? (O.srv == SRV_SIO ? (i % 2 ? T_WS : T_LONGPOLL) : i % 4) : O.tr;
    s->seen = calloc(chan_count[s->ch] / 8 + 1, 1);
    s->lastq = calloc((size_t)O.pub_conns, sizeof(uint32_t));
    strcpy(s->cur, "0");
    if (s->tr != T_POLL) held++;
    push_connect(s);
  }
  P = calloc((size_t)O.pub_conns, sizeof *P);
  for (int i = 0; i < O.pub_conns && !O.idle; i++) {
    P[i].fd = -1;
    P[i].is_pub = 1;
    P[i].idx = i;
    if (conn_open(&P[i]) < 0) die("cannot connect to 127.0.0.1:%d", O.port);
  }
  snap s0 = take_snap();

  /* phase 1: open every subscriber */
  double open_limit = 30 + O.subs / 300.0;
  uint64_t t_open0 = lg_now_us();
  while (g_ready < O.subs && lg_now_us() - t_open0 < (uint64_t)(open_limit * 1e6) &&
         g_deadline_us != UINT64_MAX)
    loop_once(10);
  double open_s = (double)(lg_now_us() - t_open0) / 1e6;
  /* phase 2: confirm the server holds them (poll subscribers are not held) */
  long held_seen = -1;
  uint64_t t_chk = lg_now_us();
  do {
    run_for(0.1);
    held_seen = server_held_count();
  } while (O.srv != SRV_SIO && held_seen >= 0 && held_seen < held &&
           lg_now_us() - t_chk < 10000000 && g_deadline_us != UINT64_MAX);
  if (g_ready < O.subs || (held_seen >= 0 && held_seen < held && O.srv != SRV_SIO))
    fprintf(stderr, "loadgen: warning: %d/%d ready locally, server reports %ld/%d held\n", g_ready,
            O.subs, held_seen, held);
  /* A slow open is the server's: the time counted runs from the request
   * being fully written to the answer's arrival. */
  if (g_open_slow)
    fprintf(stderr,
            "loadgen: %d subscribers waited over 1 s (max %.1f s) for the server's first answer "
            "after their request was on the wire\n",
            g_open_slow, (double)HO.max / 1e6);

  if (O.idle) {
    run_for(2.0);
    snap s1 = take_snap();
    double per = O.subs ? (double)(s1.rss_kb - s0.rss_kb) * 1024.0 / O.subs : 0;
    /* CPU of a server that holds everything and has nothing to send: the
     * window ends before the first-opened connection has been silent for
     * 14 s, so no heartbeat (15 s by default on both servers) falls in it;
     * what it sees is work done per tick or per connection while idle */
    double since_open = (double)(lg_now_us() - t_open0) / 1e6;
    double win = O.idle_cpu < 14 - since_open ? O.idle_cpu : 14 - since_open;
    snap s2 = s1;
    if (win >= 0.5) {
      run_for(win);
      s2 = take_snap();
    } else {
      win = 0; /* opening took too long: no window before the heartbeats */
    }
    double idle_cpu_s = (double)(s2.sched_ns - s1.sched_ns) / 1e9;
    printf("{\"mode\":\"idle\",\"server\":\"%s\",\"transport\":\"%s\",\"subs\":%d,\"ready\":%d,"
           "\"held_seen\":%ld,\"rss_kb_before\":%lld,\"rss_kb_after\":%lld,\"mem_per_conn_bytes\":%.0f,"
           "\"open_s\":%.2f,\"open_wait_p50_ms\":%.3f,\"open_wait_p99_ms\":%.3f,"
           "\"open_wait_max_ms\":%.3f,\"open_slow\":%d,\"errors\":%llu,\"lg_cpu_s\":%.3f,"
           "\"idle_window_s\":%.2f,\"idle_srv_cpu_s\":%.4f,\"idle_srv_ticks\":%lld,\"label\":\"%s\"}\n",
           srv_names[O.srv], tr_names[O.tr], O.subs, g_ready, held_seen, s0.rss_kb, s1.rss_kb, per,
           open_s, lg_hist_pct(&HO, 50) / 1e3, lg_hist_pct(&HO, 99) / 1e3, (double)HO.max / 1e3,
           g_open_slow, (unsigned long long)g_errors, s1.self_cpu - s0.self_cpu, win, idle_cpu_s,
           s2.ticks - s1.ticks, O.label);
    fprintf(stderr,
            "%-8s %-8s idle %6d conns: %7.0f B/conn (RSS %lld -> %lld KiB), opened in %.1f s "
            "(first answer p50 %.2f ms, max %.0f ms); server CPU %.1f ms in %.1f s idle\n",
            srv_names[O.srv], tr_names[O.tr], O.subs, per, s0.rss_kb, s1.rss_kb, open_s,
            lg_hist_pct(&HO, 50) / 1e3, (double)HO.max / 1e3, idle_cpu_s * 1e3, win);
    fflush(stdout);
    if (O.hold > 0) run_for(O.hold);
    return 0;
  }

  run_for(0.3);
  /* make sure publishers are connected */
  while (pub_next_free() < 0 && g_deadline_us != UINT64_MAX) loop_once(10);
  /* warm-up: messages with seq 0 reach every subscriber (JIT, caches, pools)
   * and are not measured */
  for (int w = 0; w < O.warmup && g_deadline_us != UINT64_MAX; w++) {
    int f;
    while ((f = pub_next_free()) < 0 && g_deadline_us != UINT64_MAX) loop_once(5);
    if (f >= 0) pub_send(&P[f], (uint64_t)w, 1);
    run_for(0.01);
  }
  if (O.warmup) {
    int polls = O.tr == T_POLL || O.tr == T_MIX;
    run_for(polls && O.interval_ms / 1000.0 + 0.3 > 0.5 ? O.interval_ms / 1000.0 + 0.3 : 0.5);
  }
  g_rx = g_tx = g_reqs = 0;
  g_pub_sent = g_pub_acked = g_pub_err = g_pub_bytes = 0;
  g_reconnects = g_server_closes = 0;
  uint64_t errors_before = g_errors;
  snap a = take_snap();
  uint64_t t0 = a.t, next_drop = O.drop_every_ms > 0 ? t0 + (uint64_t)(O.drop_every_ms * 1000) : UINT64_MAX;
  uint64_t k = 0, last_ack_us = 0;
  unsigned seed = 12345;
  uint64_t expected = 0;
  for (int i = 0; i < O.subs; i++) expected += chan_count[S[i].ch];
  /* phase 3: publish and receive */
  while (g_deadline_us != UINT64_MAX) {
    uint64_t now = lg_now_us();
    while (k < (uint64_t)O.count) {
      if (O.rate > 0 && now < t0 + (uint64_t)((double)k * 1e6 / O.rate)) break;
      int f = pub_next_free();
      if (f < 0) break;
      pub_send(&P[f], k++, 0);
    }
    if (now >= next_drop && k < (uint64_t)O.count) {
      int ndrop = O.drop_frac >= 1 ? O.subs : (int)(O.drop_frac * O.subs + 0.5);
      for (int j = 0; j < ndrop; j++) {
        sub *s = &S[O.drop_frac >= 1 ? j : (int)(rand_r(&seed) % (unsigned)O.subs)];
        if (s->c.fd < 0) continue;
        g_drops++;
        sub_lost(s, 1);
      }
      next_drop = now + (uint64_t)(O.drop_every_ms * 1000);
    }
    if (k >= (uint64_t)O.count && g_pub_acked >= g_pub_sent) {
      if (!last_ack_us) last_ack_us = now;
      if (g_delivered >= expected) break;
      if (now - last_ack_us > (uint64_t)((O.drain + O.interval_ms / 1000.0 * (O.tr == T_POLL || O.tr == T_MIX)) * 1e6))
        break;
    }
    int to = 10;
    if (O.rate > 0 && k < (uint64_t)O.count) {
      uint64_t due = t0 + (uint64_t)((double)k * 1e6 / O.rate);
      to = due > now ? (int)((due - now) / 1000) : 0;
      if (to > 10) to = 10;
    }
    loop_once(to);
  }
  snap b = take_snap();
  uint64_t t_end = g_last_delivery_us > t0 ? g_last_delivery_us : b.t;
  double wall = (double)(t_end - t0) / 1e6;
  uint64_t lost = 0, dup = 0, ooo = 0, bogus = 0;
  int subs_lossy = 0;
  for (int i = 0; i < O.subs; i++) {
    uint64_t l = chan_count[S[i].ch] - S[i].nseen;
    lost += l;
    subs_lossy += l > 0;
    dup += S[i].dup;
    ooo += S[i].ooo;
    bogus += S[i].bogus;
  }
  double d = g_delivered ? (double)g_delivered : 1;
  double tick = (double)sysconf(_SC_CLK_TCK);
  double srv_cpu = (double)(b.ticks - a.ticks) / tick;
  double srv_sched = (double)(b.sched_ns - a.sched_ns) / 1e9;
  double lg_cpu = b.self_cpu - a.self_cpu;
  double span = (double)(b.t - a.t) / 1e6;
  char per_pid[8 * 24 + 4] = "[";
  for (int i = 0; i < O.npids; i++)
    snprintf(per_pid + strlen(per_pid), sizeof per_pid - strlen(per_pid), "%s%.4f", i ? "," : "",
             (double)(b.pid_sched_ns[i] - a.pid_sched_ns[i]) / 1e9);
  strcat(per_pid, "]");
  printf("{\"mode\":\"%s\",\"server\":\"%s\",\"transport\":\"%s\",\"subs\":%d,\"channels\":%d,"
         "\"count\":%d,\"rate\":%.1f,\"size\":%d,\"interval_ms\":%.0f,\"drop_every_ms\":%.0f,"
         "\"drop_frac\":%.2f,\"published\":%llu,\"pub_errors\":%llu,\"expected\":%llu,"
         "\"delivered\":%llu,\"deliveries_per_s\":%.1f,\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,"
         "\"lat_max_ms\":%.3f,\"lat_mean_ms\":%.3f,\"lost\":%llu,\"subs_with_loss\":%d,\"dup\":%llu,"
         "\"ooo\":%llu,\"bogus\":%llu,\"gaps\":%llu,\"drops\":%llu,\"reconnects\":%llu,"
         "\"server_closes\":%llu,\"errors\":%llu,\"sub_rx_bytes\":%llu,\"sub_tx_bytes\":%llu,"
         "\"sub_requests\":%llu,\"bytes_per_delivery\":%.1f,\"requests_per_delivery\":%.4f,"
         "\"pub_bytes\":%llu,\"srv_cpu_s\":%.3f,\"srv_cpu_us_per_delivery\":%.3f,"
         "\"srv_sched_cpu_s\":%.4f,\"srv_sched_us_per_delivery\":%.3f,\"srv_cpu_pct\":%.1f,"
         "\"srv_rss_kb\":%lld,\"lg_cpu_s\":%.3f,\"lg_cpu_pct\":%.1f,\"wall_s\":%.2f,"
         "\"open_s\":%.2f,\"open_wait_p50_ms\":%.3f,\"open_wait_p99_ms\":%.3f,"
         "\"open_wait_max_ms\":%.3f,\"open_slow\":%d,\"held_seen\":%ld,\"nodes\":%d,"
         "\"srv_sched_cpu_s_per_pid\":%s,\"label\":\"%s\"}\n",
         O.drop_every_ms > 0 ? "reconnect" : "stream", srv_names[O.srv], tr_names[O.tr], O.subs,
         O.channels, O.count, O.rate, O.size, O.interval_ms, O.drop_every_ms, O.drop_frac,
         (unsigned long long)g_pub_sent, (unsigned long long)g_pub_err,
         (unsigned long long)expected, (unsigned long long)g_delivered, (double)g_delivered / (wall > 0 ? wall : 1),
         lg_hist_pct(&H, 50) / 1e3, lg_hist_pct(&H, 99) / 1e3, H.max / 1e3,
         H.n ? H.sum / (double)H.n / 1e3 : 0.0, (unsigned long long)lost, subs_lossy,
         (unsigned long long)dup, (unsigned long long)ooo, (unsigned long long)bogus,
         (unsigned long long)g_gaps, (unsigned long long)g_drops, (unsigned long long)g_reconnects,
         (unsigned long long)g_server_closes, (unsigned long long)(g_errors - errors_before),
         (unsigned long long)g_rx, (unsigned long long)g_tx, (unsigned long long)g_reqs,
         (double)(g_rx + g_tx) / d, (double)g_reqs / d, (unsigned long long)g_pub_bytes, srv_cpu,
         srv_cpu * 1e6 / d, srv_sched, srv_sched * 1e6 / d, span > 0 ? srv_sched * 100 / span : 0,
         b.rss_kb, lg_cpu, span > 0 ? lg_cpu * 100 / span : 0, wall, open_s, lg_hist_pct(&HO, 50) / 1e3,
         lg_hist_pct(&HO, 99) / 1e3, (double)HO.max / 1e3, g_open_slow, held_seen, O.nports,
         per_pid, O.label);
  fprintf(stderr,
          "%-8s %-8s %5d subs %4d ch %6.0f/s x%-5d %5dB: %9.0f deliv/s  p50 %7.2f ms  p99 %8.2f ms  "
          "max %8.2f ms  lost %llu dup %llu ooo %llu  %6.1f B/deliv %.3f req/deliv  srv %.2f us/deliv "
          "(%.0f%% cpu)  loadgen %.0f%% cpu\n",
          srv_names[O.srv], tr_names[O.tr], O.subs, O.channels, O.rate, O.count, O.size,
          (double)g_delivered / (wall > 0 ? wall : 1), lg_hist_pct(&H, 50) / 1e3,
          lg_hist_pct(&H, 99) / 1e3, H.max / 1e3, (unsigned long long)lost, (unsigned long long)dup,
          (unsigned long long)ooo, (double)(g_rx + g_tx) / d, (double)g_reqs / d, srv_sched * 1e6 / d,
          span > 0 ? srv_sched * 100 / span : 0, span > 0 ? lg_cpu * 100 / span : 0);
  fflush(stdout);
  if (O.hold > 0) hold_phase();
  return 0;
}
