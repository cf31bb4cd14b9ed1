/* message.c -- messages to stderr without stdio and without allocating.
 *
 * Errors print one line `amalloc: error: <what> (pointer 0x...)` and abort(); warnings and
 * verbose output use the same writer. Messages are built in a stack buffer and written with
 * one write(2), so they work during bootstrap, inside a fork handler and on a corrupt heap.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

static size_t am_fmt_hex(char *buf, size_t cap, uintptr_t v) {
  char tmp[2 + 16];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0 && n < 16);
  size_t len = 0;
  if (cap < n + 3) return 0;
  buf[len++] = '0';
  buf[len++] = 'x';
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

AM_INTERNAL size_t _am_fmt_size(char *buf, size_t cap, size_t value) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  if (cap < n) return 0;
  size_t len = 0;
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

/* A line built without allocating (the statistics report, the verbose lines about glibc's
 * settings): text and numbers appended up to the buffer's end, kept NUL-terminated, and
 * written with its newline by am_line_end. */
typedef struct {
  char buf[256];
  size_t len;
} am_line_t;
static void am_line_mem(am_line_t *l, const char *s, size_t n) {
  while (n-- > 0 && l->len < sizeof(l->buf) - 2) l->buf[l->len++] = *s++;
  l->buf[l->len] = 0;
}
static void am_line_str(am_line_t *l, const char *s) {
  while (*s && l->len < sizeof(l->buf) - 2) l->buf[l->len++] = *s++;
  l->buf[l->len] = 0;
}
/* v in decimal, right-aligned in `width` columns (0: as wide as it is) */
static void am_line_num(am_line_t *l, size_t v, size_t width) {
  char tmp[24];
  size_t n = _am_fmt_size(tmp, sizeof(tmp), v);
  while (n < width && l->len < sizeof(l->buf) - 2) {
    l->buf[l->len++] = ' ';
    width--;
  }
  am_line_mem(l, tmp, n);
}
static void am_line_end(am_line_t *l) {
  l->buf[l->len++] = '\n';
  ssize_t w = write(STDERR_FILENO, l->buf, l->len);
  (void)w;
  l->len = 0;
}

static size_t am_fmt_str(char *buf, size_t cap, const char *s) {
  size_t len = 0;
  while (s[len] != 0 && len < cap) {
    buf[len] = s[len];
    len++;
  }
  return len;
}

/* Writes "amalloc: <prefix><what>[ (pointer 0x...)]\n" to stderr, preserving errno. */
AM_INTERNAL void _am_message(const char *prefix, const char *what, const void *ptr) {
  char buf[512];
  size_t len = 0;
  int saved = errno;
  len += am_fmt_str(buf + len, sizeof(buf) - 40 - len, "amalloc: ");
  len += am_fmt_str(buf + len, sizeof(buf) - 40 - len, prefix);
  len += am_fmt_str(buf + len, sizeof(buf) - 40 - len, what);
  if (ptr != NULL) {
    len += am_fmt_str(buf + len, sizeof(buf) - len, " (pointer ");
    len += am_fmt_hex(buf + len, sizeof(buf) - len, (uintptr_t)ptr);
    buf[len++] = ')';
  }
  buf[len++] = '\n';
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(STDERR_FILENO, buf + off, len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  errno = saved;
}

/* "amalloc: error: <fn>: <problem> (pointer 0x...)" and abort. */
AM_INTERNAL _Noreturn void _am_fatal_in(const char *fn, const char *problem, const void *ptr) {
  char what[160];
  size_t len = am_fmt_str(what, 60, fn);
  what[len++] = ':';
  what[len++] = ' ';
  len += am_fmt_str(what + len, sizeof(what) - 1 - len, problem);
  what[len] = 0;
  _am_fatal(what, ptr);
}

AM_INTERNAL _Noreturn void _am_fatal(const char *what, const void *ptr) {
  _am_message("error: ", what, ptr);
  abort();
}
