/* lg_util.h: small helpers for bench/loadgen.c (buffers, latency histogram,
 * /proc readers).  Header-only so the generator builds with one gcc line. */
#ifndef LG_UTIL_H
#define LG_UTIL_H

#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- growable byte buffer with a consumed offset ---- */
typedef struct lg_buf {
  char *p;
  size_t len, cap, off;
} lg_buf;

static inline void lg_buf_reserve(lg_buf *b, size_t extra) {
  if (b->off > 0 && b->off == b->len) {
    b->off = b->len = 0;
  }
  if (b->len + extra <= b->cap) return;
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + extra <= b->cap) return;
  }
  size_t nc = b->cap ? b->cap : 1024;
  while (nc < b->len + extra) nc *= 2;
  char *np = realloc(b->p, nc);
  if (!np) {
    perror("realloc");
    exit(2);
  }
  b->p = np;
  b->cap = nc;
}

static inline void lg_buf_add(lg_buf *b, const void *d, size_t n) {
  lg_buf_reserve(b, n + 1);
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0; /* always NUL-terminated for strstr-style scans */
}

static inline void lg_buf_clear(lg_buf *b) { b->len = b->off = 0; }

static inline void lg_buf_free(lg_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- time ---- */
static inline uint64_t lg_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- log-linear latency histogram in microseconds (about 3 % buckets) ---- */
#define LG_HIST_N 1400
typedef struct lg_hist {
  uint64_t b[LG_HIST_N];
  uint64_t n, max;
  double sum;
} lg_hist;

static inline int lg_hist_idx(uint64_t v) {
  if (v < 64) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int e = msb - 5;
  int idx = 64 + (e - 1) * 32 + (int)((v >> e) - 32);
  return idx < LG_HIST_N ? idx : LG_HIST_N - 1;
}

static inline uint64_t lg_hist_val(int idx) {
  if (idx < 64) return (uint64_t)idx;
  int e = (idx - 64) / 32 + 1;
  uint64_t m = (uint64_t)((idx - 64) % 32 + 32);
  return (m << e) + ((1ull << e) >> 1);
}

static inline void lg_hist_add(lg_hist *h, uint64_t v) {
  h->b[lg_hist_idx(v)]++;
  h->n++;
  h->sum += (double)v;
  if (v > h->max) h->max = v;
}

static inline uint64_t lg_hist_pct(const lg_hist *h, double pct) {
  if (!h->n) return 0;
  uint64_t want = (uint64_t)((double)h->n * pct / 100.0);
  if (want >= h->n) want = h->n - 1;
  uint64_t acc = 0;
  for (int i = 0; i < LG_HIST_N; i++) {
    acc += h->b[i];
    if (acc > want) {
      uint64_t v = lg_hist_val(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}

/* ---- /proc readers ---- */
/* utime+stime of a process in clock ticks (all threads, reaped children not
 * included), or -1 */
static inline long long lg_proc_ticks(int pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2; /* state is field 3 */
  unsigned long long ut = 0, st = 0;
  /* fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
             &st) != 2)
    return -1;
  return (long long)(ut + st);
}

/* sum of sum_exec_runtime (ns) over the threads of a process: finer than
 * ticks; -1 if unavailable */
static inline long long lg_proc_sched_ns(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  long long sum = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    char p2[320];
    snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", pid, de->d_name);
    FILE *f = fopen(p2, "r");
    if (!f) continue;
    long long v = 0;
    if (fscanf(f, "%lld", &v) == 1) sum += v;
    fclose(f);
  }
  closedir(d);
  return sum;
}

/* VmRSS in KiB, or -1 */
static inline long long lg_proc_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "VmRSS:", 6)) {
      v = atoll(line + 6);
      break;
    }
  }
  fclose(f);
  return v;
}

#endif
