/* interp.c -- an interpreter-like mix: a long-lived set of 200,000 small objects (the globals and
 * the loaded program) and a stream of tiny temporaries (16-64 bytes) on an evaluation stack that
 * mostly die young; now and then a temporary is stored into the long-lived set (replacing and
 * freeing an old one), and lists grow by realloc.   interp [scale]
 */
#include "common.h"

#define GLOBALS 200000
#define STACK 256

typedef struct obj { uint32_t kind, len; uint64_t val; } obj;

static obj *new_obj(uint64_t *s, uint64_t v) {
  uint32_t len = 16 + (uint32_t)(rng_next(s) % 49) ;
  obj *o = xmalloc(len);
  o->kind = (uint32_t)(v & 3);
  o->len = len;
  o->val = v;
  return o;
}

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(40e6, scale_arg(argc, argv));
  uint64_t s = 42, h = 0;
  obj **globals = xmalloc(GLOBALS * sizeof *globals);
  for (int i = 0; i < GLOBALS; i++) globals[i] = new_obj(&s, (uint64_t)i);
  obj *stack[STACK];
  int sp = 0;
  obj **list = NULL;
  size_t listn = 0, listcap = 0;
  for (long i = 0; i < steps; i++) {
    uint64_t r = rng_next(&s);
    switch (r % 8) {
      case 0: case 1: case 2: /* push a constant or a loaded global */
        if (sp < STACK) stack[sp++] = new_obj(&s, r >> 8);
        break;
      case 3: case 4: /* binary operation: pop two, push result */
        if (sp >= 2) {
          obj *b = stack[--sp], *a = stack[--sp];
          uint64_t v = a->val * 31 + b->val + globals[(r >> 16) % GLOBALS]->val;
          free(a);
          free(b);
          stack[sp++] = new_obj(&s, v);
        }
        break;
      case 5: /* pop and discard */
        if (sp > 0) {
          obj *a = stack[--sp];
          h = mix(h, a->val);
          free(a);
        }
        break;
      case 6: /* store into a global (rare) or append to the list */
        if (sp > 0) {
          obj *a = stack[--sp];
          if ((r >> 8) % 16 == 0) {
            size_t g = (r >> 20) % GLOBALS;
            h = mix(h, globals[g]->val);
            free(globals[g]);
            globals[g] = a;
          } else {
            if (listn == listcap) {
              listcap = listcap ? listcap * 2 : 8;
              list = realloc(list, listcap * sizeof *list);
            }
            list[listn++] = a;
          }
        }
        break;
      case 7: /* the list goes out of scope */
        if ((r >> 8) % 64 == 0) {
          for (size_t k = 0; k < listn; k++) {
            h = mix(h, list[k]->val);
            free(list[k]);
          }
          free(list);
          list = NULL;
          listn = listcap = 0;
        }
        break;
    }
  }
  while (sp > 0) free(stack[--sp]);
  for (size_t k = 0; k < listn; k++) free(list[k]);
  free(list);
  for (int i = 0; i < GLOBALS; i++) {
    h = mix(h, globals[i]->val);
    free(globals[i]);
  }
  free(globals);
  finish(h);
  return 0;
}
