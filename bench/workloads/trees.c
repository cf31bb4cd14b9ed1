/* trees.c -- build and tear down many binary trees (the shape of the "binary trees" benchmark):
 * one long-lived tree of depth MAX stays alive while trees of depth 4, 6, ..., MAX are built,
 * walked and freed, many times each.   trees [scale]
 */
#include "common.h"

typedef struct node { struct node *left, *right; long value; } node;

static node *build(int depth, long v) {
  node *n = xmalloc(sizeof *n);
  n->value = v;
  if (depth > 0) {
    n->left = build(depth - 1, 2 * v);
    n->right = build(depth - 1, 2 * v + 1);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static uint64_t check(const node *n) {
  return n->left ? 1 + (uint64_t)n->value % 7 + check(n->left) + check(n->right) : 1;
}

static void destroy(node *n) {
  if (n->left) {
    destroy(n->left);
    destroy(n->right);
  }
  free(n);
}

int main(int argc, char **argv) {
  rss_start();
  double scale = scale_arg(argc, argv);
  const int max = 18;
  uint64_t sum = 0;
  node *longlived = build(max, 1);
  for (int d = 4; d <= max; d += 2) {
    long iters = scaled((double)(1L << (max - d + 4)), scale);
    for (long i = 0; i < iters; i++) {
      node *t = build(d, i);
      sum += check(t);
      destroy(t);
    }
  }
  sum = mix(sum, check(longlived));
  destroy(longlived);
  finish(sum);
  return 0;
}
