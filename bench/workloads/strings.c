/* strings.c -- strings grown with realloc: 20,000 live strings; each step appends 1-80 bytes
 * to a random string (realloc to the exact new length, as naive code does); a string that
 * passes its random limit (256 B - 64 KiB) is hashed and freed.   strings [scale]
 */
#include "common.h"

#define SLOTS 20000

typedef struct { char *p; size_t len, limit; } str;

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(6e6, scale_arg(argc, argv));
  uint64_t s = 7, h = 0;
  str *v = calloc(SLOTS, sizeof *v);
  for (long i = 0; i < steps; i++) {
    uint64_t r = rng_next(&s);
    str *x = &v[r % SLOTS];
    if (x->p == NULL) x->limit = 256u << ((r >> 20) % 9);
    size_t add = 1 + (r >> 32) % 80;
    x->p = realloc(x->p, x->len + add + 1);
    if (x->p == NULL) abort();
    memset(x->p + x->len, 'a' + (int)(i % 26), add);
    x->len += add;
    x->p[x->len] = 0;
    if (x->len > x->limit) {
      for (size_t k = 0; k < x->len; k += 97) h = mix(h, (unsigned char)x->p[k]);
      free(x->p);
      x->p = NULL;
      x->len = 0;
    }
  }
  for (int k = 0; k < SLOTS; k++) {
    h = mix(h, v[k].len);
    free(v[k].p);
  }
  free(v);
  finish(h);
  return 0;
}
