/* sizeclass.c -- size classes.
 *
 * The scheme (52 classes):
 *   classes 0..7   16, 32, 48, ..., 128: steps of 16, so every block is 16-byte aligned
 *                  (max_align_t on x86-64); 16 is the smallest block, so that a free block holds
 *                  its free-list link and its double-free mark (alloc.c)
 *   classes 8..51  four per doubling above 128: 2^e * 5/4, 6/4, 7/4, 8/4 for e = 7..17, i.e.
 *                  160, 192, 224, 256, 320, ..., 224 KiB, 256 KiB.
 *
 * Internal waste, (block - request) / block, is therefore at most 20% for requests above
 * 128 bytes (the worst case is 2^e + 1 bytes in a block of 1.25 * 2^e) and at most 23.4% for
 * requests above 48 bytes (49 in 64); below that the 16-byte step dominates (at most 15 bytes).
 * doc/size-classes.md has the full table; test/sizeclass.c checks these bounds for every size.
 *
 * am_size_class() (internal.h) maps a size to its class: a table lookup up to 1 KiB, a few
 * bit operations above.
 */
#include "internal.h"

static size_t am_class_size_compute(size_t cls) {
  if (cls <= 7) return (cls + 1) * 16;
  size_t k = (cls - 8) & 3;                /* 0..3: 5/4 .. 8/4 of the power of two */
  size_t e = 7 + (cls - 8) / 4;
  return ((size_t)1 << e) + (k + 1) * ((size_t)1 << (e - 2));
}

AM_INTERNAL void _am_sizeclass_init(void) {
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) am_class_size[c] = (uint32_t)am_class_size_compute(c);
  size_t c = 0;
  for (size_t i = 0; i <= AM_TABLE_MAX / 8; i++) {
    size_t size = i * 8;
    while (am_class_size[c] < size) c++;
    am_class_of_small[i] = (uint8_t)c;
  }
#if AM_DEBUG >= 1
  for (size_t size = 1; size <= AM_MEDIUM_MAX; size++) {
    size_t k = am_size_class(size);
    am_assert(k < AM_CLASS_COUNT && am_class_size[k] >= size);
    am_assert(k == 0 || am_class_size[k - 1] < size);
  }
#endif
}
