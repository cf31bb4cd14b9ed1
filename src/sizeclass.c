/* sizeclass.c -- size classes.
 *
 * The scheme (96 classes):
 *   classes 0..7   16, 32, 48, ..., 128: steps of 16, so every block is 16-byte aligned
 *                  (max_align_t on x86-64); 16 is the smallest block, so that a free block holds
 *                  its free-list link and its double-free mark (alloc.c)
 *   classes 8..95  eight per doubling above 128: 2^e * 9/8, 10/8, ..., 16/8 for e = 7..17,
 *                  i.e. 144, 160, ..., 256, 288, 320, ..., 240 KiB, 256 KiB. Every size is a
 *                  multiple of 16. Why eight and not four: requests of a power of two plus a
 *                  small header (sqlite's 1,032 and 4,104 bytes) wasted up to 20% with four;
 *                  eight halve the rounding waste and cut peak RSS (doc/size-classes.md).
 *
 * Internal waste, (block - request) / block, is therefore at most 11.1% for requests above
 * 128 bytes (the worst case is 2^e + 1 bytes in a block of 9/8 * 2^e) and at most 23.4% for
 * requests above 48 bytes (49 in 64); below that the 16-byte step dominates (at most 15 bytes).
 * doc/size-classes.md has the full table; test/sizeclass.c checks these bounds for every size.
 *
 * am_size_class() (internal.h) maps a size to its class: a table lookup up to 1 KiB, a few
 * bit operations above.
 */
#include "internal.h"

static size_t am_class_size_compute(size_t cls) {
  if (cls >= AM_DENSE_FIRST) return 24 + (cls - AM_DENSE_FIRST) * 16;   /* 24, 40, 56 */
  if (cls <= 7) return (cls + 1) * 16;
  size_t k = (cls - 8) & 7;                /* 0..7: 9/8 .. 16/8 of the power of two */
  size_t e = 7 + (cls - 8) / 8;
  return ((size_t)1 << e) + (k + 1) * ((size_t)1 << (e - 3));
}

AM_INTERNAL void _am_sizeclass_init(void) {
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) am_class_size[c] = (uint32_t)am_class_size_compute(c);
  size_t c = 0;
  for (size_t i = 0; i <= AM_TABLE_MAX / 8; i++) {
    size_t size = i * 8;
    while (am_class_size[c] < size) c++;
    am_class_of_small[i] = (uint8_t)c;
  }
  /* the smallest class of either kind that fits */
  for (size_t i = 0; i <= AM_DENSE_MAX / 8; i++) {
    size_t best = am_class_of_small[i];
    for (size_t d = AM_DENSE_FIRST; d < AM_CLASS_COUNT; d++)
      if (am_class_size[d] >= i * 8 && am_class_size[d] < am_class_size[best]) best = d;
    am_class_of_dense[i] = (uint8_t)best;
  }
#if AM_DEBUG >= 1
  for (size_t size = 1; size <= AM_MEDIUM_MAX; size++) {
    size_t k = am_size_class(size);
    am_assert(k < AM_CLASS_COUNT && am_class_size[k] >= size);
    am_assert(k == 0 || am_class_size[k - 1] < size);
  }
#endif
}
