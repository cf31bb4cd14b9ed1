/* unwind.c -- the heap profiler's stack walker (prof.c am_prof_backtrace), x86-64.
 *
 * Call frame information read in place, the way a debugger reads it, without allocating or
 * locking: glibc's _dl_find_object gives the object of a code address and its .eh_frame_hdr,
 * whose table gives the address's FDE by binary search; the CIE's and the FDE's programs, run
 * up to the address, say where the caller's stack pointer is (the CFA: rsp or rbp plus an
 * offset), where the return address is saved and where rbp is saved. Those three rules are all
 * a walk needs, and each address's rules are kept in a small cache (types.h
 * am_unwind_state_t): a warm walk costs a cache lookup and two loads a frame, and one object
 * lookup each time the walk enters another object.
 *
 * Why our own: libgcc's _Unwind_Backtrace does the same with full generality and no cache (7.3
 * us for 25 frames); libunwind caches, but maps 256 KiB in each thread at its first walk and
 * loads liblzma (0.4 MiB more RSS in a small profiled program, 7 MiB in a 30-thread server, 3.2
 * x the time of a program that starts a thread per few hundred allocations); a frame-pointer
 * walk finds one frame in Debian's builds, which have no frame pointers. Figures:
 * doc/heap-profiler.md.
 *
 * Why it is safe. _dl_find_object takes no lock (nothing to be held across fork, no deadlock
 * with a thread inside the loader) and its answer stays valid while the object is loaded;
 * every address looked up is a return address on the calling thread's stack, i.e. code that is
 * running and cannot be unloaded. Each CFA must lie above the last (8-byte aligned, less than
 * 16 MiB above it), and the saved return address and rbp are read only between the two: a
 * wrong rule ends the walk rather than reading far. An address no object describes (JIT code),
 * a rule this walker does not follow (a CFA or return address given by a DWARF expression, as
 * in signal trampolines and functions that realign their stack) and the outermost frame (its
 * return address undefined) end it.
 */
#include "internal.h"

#if AM_PROF_UNWINDER                     /* (x86-64 only: types.h) */

#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>

#define AM_UNW_STEP_MAX ((uintptr_t)16 << 20)
/* am_unw_rule_t's flags (types.h) */
#define AM_UNW_CFA_RSP 1                /* the CFA is rsp + cfa_off */
#define AM_UNW_CFA_RBP 2                /* the CFA is rbp + cfa_off */
#define AM_UNW_RBP_SAVED 4              /* the caller's rbp is saved at CFA + rbp_off */
#define AM_UNW_RBP_LOST 8               /* the caller's rbp is not known (a rule not followed) */
#define AM_UNW_END 16                   /* the outermost frame: the return address is undefined */
#define AM_UNW_STATES 8                 /* DW_CFA_remember_state nesting followed */

/* DWARF register numbers (x86-64 psABI) */
#define AM_DW_RBP 6
#define AM_DW_RSP 7

typedef enum { AM_UNW_SAME, AM_UNW_AT, AM_UNW_UNDEFINED, AM_UNW_OTHER } am_unw_how_t;
typedef struct {
  am_unw_how_t how;
  int64_t off;                          /* AM_UNW_AT: saved at CFA + off */
} am_unw_reg_t;
/* What a walk needs of one code address: */
typedef struct {
  int32_t cfa_off;                      /* the caller's stack pointer (CFA): rsp or rbp + cfa_off */
  int16_t rbp_off;                      /* the caller's rbp saved at CFA + rbp_off (AM_UNW_RBP_SAVED) */
  int8_t ra_off;                        /* the return address saved at CFA + 8 * ra_off */
  uint8_t flags;                        /* AM_UNW_*; 0: the walk stops here */
} am_unw_rule_t;

typedef struct {
  int cfa_reg;                          /* -1: given by an expression */
  int64_t cfa_off;
  am_unw_reg_t rbp, ra;
} am_unw_row_t;

typedef struct {
  unsigned ra_reg;
  uint64_t code_align;
  int64_t data_align;
  uint8_t fde_enc;                      /* how the FDE's addresses are encoded */
  bool aug_z;                           /* FDEs carry augmentation data */
  const uint8_t *insns, *end;           /* the initial instructions */
} am_unw_cie_t;

/* ---- reading -------------------------------------------------------------------------------- */

static bool am_unw_uleb(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; *pp < end && shift < 64; shift += 7) {
    uint8_t b = *(*pp)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

static bool am_unw_sleb(const uint8_t **pp, const uint8_t *end, int64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  do {
    if (*pp >= end || shift >= 64) return false;
    b = *(*pp)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  if (shift < 64 && (b & 0x40)) v |= ~(uint64_t)0 << shift;
  *out = (int64_t)v;
  return true;
}

/* A pointer encoded as DW_EH_PE `enc` says: absolute, pc-relative or relative to `datarel`
 * (indirect ones are read as the address of the pointer: only a personality routine's is
 * indirect, and it is skipped). */
static bool am_unw_encoded(const uint8_t **pp, const uint8_t *end, uint8_t enc, uintptr_t datarel, uintptr_t *out) {
  const uint8_t *p = *pp;
  uintptr_t base;
  switch (enc & 0x70) {
  case 0x00: base = 0; break;
  case 0x10: base = (uintptr_t)p; break;               /* pcrel */
  case 0x30: base = datarel; break;                    /* datarel */
  default: return false;
  }
  uint64_t v;
  int64_t s;
  switch (enc & 0x0f) {
  case 0x00: case 0x04: case 0x0c:                     /* absptr, udata8, sdata8 */
    if (end - p < 8) return false;
    memcpy(&v, p, 8);
    p += 8;
    break;
  case 0x01:
    if (!am_unw_uleb(&p, end, &v)) return false;
    break;
  case 0x09:
    if (!am_unw_sleb(&p, end, &s)) return false;
    v = (uint64_t)s;
    break;
  case 0x02: case 0x0a: {                              /* udata2, sdata2 */
    uint16_t x;
    if (end - p < 2) return false;
    memcpy(&x, p, 2);
    p += 2;
    v = (enc & 0x08) ? (uint64_t)(int64_t)(int16_t)x : x;
    break;
  }
  case 0x03: case 0x0b: {                              /* udata4, sdata4 */
    uint32_t x;
    if (end - p < 4) return false;
    memcpy(&x, p, 4);
    p += 4;
    v = (enc & 0x08) ? (uint64_t)(int64_t)(int32_t)x : x;
    break;
  }
  default: return false;
  }
  *pp = p;
  *out = base + (uintptr_t)v;
  return true;
}

/* The start and end of a CIE or FDE at p (its length field), or false. */
static bool am_unw_entry(const uint8_t *p, const uint8_t **body, const uint8_t **end) {
  uint32_t len;
  memcpy(&len, p, 4);
  if (len == 0 || len == 0xffffffffu) return false;    /* a terminator, or 64-bit DWARF (not in .eh_frame) */
  *body = p + 4;
  *end = p + 4 + len;
  return true;
}

static bool am_unw_parse_cie(const uint8_t *p, am_unw_cie_t *cie) {
  const uint8_t *q, *end;
  if (!am_unw_entry(p, &q, &end) || end - q < 5) return false;
  uint32_t id;
  memcpy(&id, q, 4);
  q += 4;
  uint8_t version = *q++;
  if (id != 0 || (version != 1 && version != 3)) return false;
  const char *aug = (const char *)q;
  while (q < end && *q != 0) q++;
  if (q++ >= end) return false;
  if (aug[0] == 'e' && aug[1] == 'h') return false;   /* (the pre-1998 "eh" data: not on this system) */
  int64_t data_align;
  uint64_t ra;
  if (!am_unw_uleb(&q, end, &cie->code_align) || !am_unw_sleb(&q, end, &data_align)) return false;
  cie->data_align = data_align;
  if (version == 1) {
    if (q >= end) return false;
    ra = *q++;
  } else if (!am_unw_uleb(&q, end, &ra)) {
    return false;
  }
  cie->ra_reg = (unsigned)ra;
  cie->fde_enc = 0;                     /* absptr */
  cie->aug_z = aug[0] == 'z';
  if (cie->aug_z) {
    uint64_t len;
    if (!am_unw_uleb(&q, end, &len) || len > (uint64_t)(end - q)) return false;
    const uint8_t *a = q, *aend = q + len;
    for (const char *c = aug + 1; *c != 0; c++) {
      uintptr_t skip;
      if (*c == 'R') {
        if (a >= aend) return false;
        cie->fde_enc = *a++;
      } else if (*c == 'P') {           /* the personality routine: skipped */
        if (a >= aend) return false;
        uint8_t enc = *a++;
        if (!am_unw_encoded(&a, aend, enc & 0x7f, 0, &skip)) return false;
      } else if (*c == 'L') {
        if (a >= aend) return false;
        a++;
      } else if (*c != 'S' && *c != 'B' && *c != 'G') {
        return false;                   /* unknown: the data after it cannot be read */
      }
    }
    q = aend;
  }
  cie->insns = q;
  cie->end = end;
  return true;
}

/* ---- the rules ------------------------------------------------------------------------------ */

static am_unw_reg_t *am_unw_reg(am_unw_row_t *row, const am_unw_cie_t *cie, uint64_t reg) {
  if (reg == AM_DW_RBP) return &row->rbp;
  if (reg == cie->ra_reg) return &row->ra;
  return NULL;                          /* a register the walk does not need */
}

/* Runs call frame instructions [p, end) from location *loc until the row for `ip` is complete
 * (an advance past ip). `initial` is the row after the CIE's instructions (DW_CFA_restore). */
static bool am_unw_run(const uint8_t *p, const uint8_t *end, const am_unw_cie_t *cie, uintptr_t *loc,
                       uintptr_t ip, am_unw_row_t *row, const am_unw_row_t *initial) {
  am_unw_row_t saved[AM_UNW_STATES];
  int depth = 0;
  while (p < end) {
    uint8_t op = *p++;
    uint64_t reg = 0, u = 0, delta = 0;
    int64_t s = 0;
    am_unw_reg_t *r;
    switch (op & 0xc0) {
    case 0x40:                                          /* advance_loc */
      delta = op & 0x3f;
      goto advance;
    case 0x80:                                          /* offset */
      if (!am_unw_uleb(&p, end, &u)) return false;
      if ((r = am_unw_reg(row, cie, op & 0x3f)) != NULL) *r = (am_unw_reg_t){AM_UNW_AT, (int64_t)u * cie->data_align};
      continue;
    case 0xc0:                                          /* restore */
      reg = op & 0x3f;
      goto restore;
    }
    switch (op) {
    case 0x00: continue;                                /* nop */
    case 0x01: {                                        /* set_loc */
      uintptr_t to;
      if (!am_unw_encoded(&p, end, cie->fde_enc, 0, &to)) return false;
      if (to > ip) return true;
      *loc = to;
      continue;
    }
    case 0x02:
      if (p >= end) return false;
      delta = *p++;
      goto advance;
    case 0x03: {
      uint16_t x;
      if (end - p < 2) return false;
      memcpy(&x, p, 2);
      p += 2;
      delta = x;
      goto advance;
    }
    case 0x04: {
      uint32_t x;
      if (end - p < 4) return false;
      memcpy(&x, p, 4);
      p += 4;
      delta = x;
      goto advance;
    }
    case 0x05:                                          /* offset_extended */
    case 0x14:                                          /* val_offset: not a saved slot */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_uleb(&p, end, &u)) return false;
      if ((r = am_unw_reg(row, cie, reg)) != NULL)
        *r = op == 0x05 ? (am_unw_reg_t){AM_UNW_AT, (int64_t)u * cie->data_align} : (am_unw_reg_t){AM_UNW_OTHER, 0};
      continue;
    case 0x11:                                          /* offset_extended_sf */
    case 0x15:                                          /* val_offset_sf */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_sleb(&p, end, &s)) return false;
      if ((r = am_unw_reg(row, cie, reg)) != NULL)
        *r = op == 0x11 ? (am_unw_reg_t){AM_UNW_AT, s * cie->data_align} : (am_unw_reg_t){AM_UNW_OTHER, 0};
      continue;
    case 0x2f:                                          /* GNU_negative_offset_extended */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_uleb(&p, end, &u)) return false;
      if ((r = am_unw_reg(row, cie, reg)) != NULL) *r = (am_unw_reg_t){AM_UNW_AT, -(int64_t)u * cie->data_align};
      continue;
    case 0x06:                                          /* restore_extended */
      if (!am_unw_uleb(&p, end, &reg)) return false;
      goto restore;
    case 0x07:                                          /* undefined */
    case 0x08:                                          /* same_value */
      if (!am_unw_uleb(&p, end, &reg)) return false;
      if ((r = am_unw_reg(row, cie, reg)) != NULL) *r = (am_unw_reg_t){op == 0x07 ? AM_UNW_UNDEFINED : AM_UNW_SAME, 0};
      continue;
    case 0x09:                                          /* register */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_uleb(&p, end, &u)) return false;
      if ((r = am_unw_reg(row, cie, reg)) != NULL) *r = (am_unw_reg_t){AM_UNW_OTHER, 0};
      continue;
    case 0x0a:                                          /* remember_state */
      if (depth == AM_UNW_STATES) return false;
      saved[depth++] = *row;
      continue;
    case 0x0b:                                          /* restore_state (the CFA rule too) */
      if (depth == 0) return false;
      *row = saved[--depth];
      continue;
    case 0x0c:                                          /* def_cfa */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_uleb(&p, end, &u)) return false;
      row->cfa_reg = (int)reg;
      row->cfa_off = (int64_t)u;
      continue;
    case 0x12:                                          /* def_cfa_sf */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_sleb(&p, end, &s)) return false;
      row->cfa_reg = (int)reg;
      row->cfa_off = s * cie->data_align;
      continue;
    case 0x0d:                                          /* def_cfa_register */
      if (!am_unw_uleb(&p, end, &reg)) return false;
      row->cfa_reg = (int)reg;
      continue;
    case 0x0e:                                          /* def_cfa_offset */
      if (!am_unw_uleb(&p, end, &u)) return false;
      row->cfa_off = (int64_t)u;
      continue;
    case 0x13:                                          /* def_cfa_offset_sf */
      if (!am_unw_sleb(&p, end, &s)) return false;
      row->cfa_off = s * cie->data_align;
      continue;
    case 0x0f:                                          /* def_cfa_expression */
      if (!am_unw_uleb(&p, end, &u) || u > (uint64_t)(end - p)) return false;
      p += u;
      row->cfa_reg = -1;
      continue;
    case 0x10:                                          /* expression */
    case 0x16:                                          /* val_expression */
      if (!am_unw_uleb(&p, end, &reg) || !am_unw_uleb(&p, end, &u) || u > (uint64_t)(end - p)) return false;
      p += u;
      if ((r = am_unw_reg(row, cie, reg)) != NULL) *r = (am_unw_reg_t){AM_UNW_OTHER, 0};
      continue;
    case 0x2e:                                          /* GNU_args_size */
      if (!am_unw_uleb(&p, end, &u)) return false;
      continue;
    default:
      return false;
    }
  advance:
    if (delta * cie->code_align > ip - *loc) return true;   /* the next row starts after ip */
    *loc += delta * cie->code_align;
    continue;
  restore:
    if ((r = am_unw_reg(row, cie, reg)) != NULL) *r = reg == AM_DW_RBP ? initial->rbp : initial->ra;
  }
  return true;
}

/* The rule of address ip, found in the object's .eh_frame_hdr (false: none). */
static bool am_unw_compute(const uint8_t *hdr, uintptr_t ip, am_unw_rule_t *out) {
  if (hdr[0] != 1 || hdr[3] != 0x3b) return false;   /* version 1, a table of datarel sdata4 pairs */
  const uint8_t *p = hdr + 4, *far = hdr + ((size_t)1 << 30);
  uintptr_t eh_frame, count;
  if (!am_unw_encoded(&p, far, hdr[1], (uintptr_t)hdr, &eh_frame) ||
      !am_unw_encoded(&p, far, hdr[2], (uintptr_t)hdr, &count) || count == 0)
    return false;
  const int32_t *table = (const int32_t *)(const void *)p;
  size_t lo = 0, hi = count;         /* the last entry whose start is at or below ip */
  if ((uintptr_t)hdr + table[0] > ip) return false;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)hdr + table[2 * mid] <= ip) lo = mid; else hi = mid;
  }
  const uint8_t *fde = hdr + table[2 * lo + 1], *q, *end;
  if (!am_unw_entry(fde, &q, &end) || end - q < 4) return false;
  int32_t cie_off;
  memcpy(&cie_off, q, 4);
  am_unw_cie_t cie;
  if (cie_off == 0 || !am_unw_parse_cie(q - cie_off, &cie)) return false;
  q += 4;
  uintptr_t start, range;
  if (!am_unw_encoded(&q, end, cie.fde_enc, 0, &start) || !am_unw_encoded(&q, end, cie.fde_enc & 0x0f, 0, &range))
    return false;
  if (ip < start || ip - start >= range) return false;
  if (cie.aug_z) {
    uint64_t len;
    if (!am_unw_uleb(&q, end, &len) || len > (uint64_t)(end - q)) return false;
    q += len;
  }
  am_unw_row_t row = {.cfa_reg = -1, .rbp = {AM_UNW_SAME, 0}, .ra = {AM_UNW_SAME, 0}}, initial;
  uintptr_t loc = start;
  if (!am_unw_run(cie.insns, cie.end, &cie, &loc, UINTPTR_MAX, &row, &row)) return false;
  initial = row;
  loc = start;
  if (!am_unw_run(q, end, &cie, &loc, ip, &row, &initial)) return false;

  /* the row, as the walk follows it */
  out->flags = 0;
  if (row.ra.how == AM_UNW_UNDEFINED) {
    out->flags = AM_UNW_END;
    return true;
  }
  if ((row.cfa_reg != AM_DW_RSP && row.cfa_reg != AM_DW_RBP) || row.ra.how != AM_UNW_AT || row.ra.off % 8 != 0 ||
      row.ra.off < -8 * 128 || row.ra.off >= 0 || row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX)
    return false;
  out->cfa_off = (int32_t)row.cfa_off;
  out->ra_off = (int8_t)(row.ra.off / 8);
  out->flags = row.cfa_reg == AM_DW_RSP ? AM_UNW_CFA_RSP : AM_UNW_CFA_RBP;
  if (row.rbp.how == AM_UNW_AT && row.rbp.off < 0 && row.rbp.off >= INT16_MIN) {
    out->rbp_off = (int16_t)row.rbp.off;
    out->flags |= AM_UNW_RBP_SAVED;
  } else if (row.rbp.how != AM_UNW_SAME) {
    out->flags |= AM_UNW_RBP_LOST;
  }
  return true;
}

/* ---- the cache and the walk ---------------------------------------------------------------- */

typedef struct {
  int32_t cfa_off;
  int16_t rbp_off;
  int8_t ra_off;
  uint8_t flags;
} am_unw_packed_t;

static uint64_t am_unw_pack(const am_unw_rule_t *r) {
  am_unw_packed_t p = {r->cfa_off, r->rbp_off, r->ra_off, r->flags};
  uint64_t v;
  memcpy(&v, &p, sizeof(v));
  return v;
}

static void am_unw_unpack(uint64_t v, am_unw_rule_t *r) {
  am_unw_packed_t p;
  memcpy(&p, &v, sizeof(p));
  *r = (am_unw_rule_t){.cfa_off = p.cfa_off, .rbp_off = p.rbp_off, .ra_off = p.ra_off, .flags = p.flags};
}

/* The object a walk is in: consecutive frames are mostly in one object, which is looked up once. */
typedef struct {
  uintptr_t lo, hi;                     /* its range (lo == hi: none yet) */
  uintptr_t hdr;                        /* its .eh_frame_hdr (0: none) */
} am_unw_obj_t;

/* The rule of code address ip (flags 0: the walk stops there). */
static am_unw_rule_t am_unw_rule(am_unwind_state_t *u, uintptr_t ip, am_unw_obj_t *o) {
  am_unw_rule_t r = {0};
  if (ip < o->lo || ip >= o->hi) {
    /* (glibc's lookup without a lock, what libgcc's unwinder uses: ip is a return address on
     * this thread's stack, in code that cannot be unloaded while it runs; so is the object of
     * the frame before, which is why an address in its range needs no new lookup) */
    struct dl_find_object obj;
    if (ip >= u->main_lo && ip < u->main_hi && u->main_static) {
      /* (a static program: glibc's lookup fails or gives no table for the executable) */
      *o = (am_unw_obj_t){u->main_lo, u->main_hi, u->main_hdr};
    } else {
      if (_dl_find_object((void *)ip, &obj) != 0) return r;
      o->lo = (uintptr_t)obj.dlfo_map_start;
      o->hi = (uintptr_t)obj.dlfo_map_end;
      o->hdr = (uintptr_t)obj.dlfo_eh_frame;
    }
  }
  uintptr_t hdr = o->hdr, base = o->lo;   /* (the cache's key: the object's table and start) */
  if (hdr == 0) return r;
  am_unw_entry_t *e = &u->cache[((ip * 0x9e3779b97f4a7c15ull) >> 40) & (AM_UNW_CACHE - 1)];
  /* (acquire loads, release stores, no fences: each field's load is ordered before the second
   * read of seq, and each field's store after the claim; all plain moves on x86-64) */
  uint64_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
  if ((seq & 1) == 0 && atomic_load_explicit(&e->ip, memory_order_acquire) == ip &&
      atomic_load_explicit(&e->hdr, memory_order_acquire) == hdr &&
      atomic_load_explicit(&e->base, memory_order_acquire) == base) {
    uint64_t packed = atomic_load_explicit(&e->rule, memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) == seq) {
      am_unw_unpack(packed, &r);
      return r;
    }
  }
  if (!am_unw_compute((const uint8_t *)hdr, ip, &r)) r = (am_unw_rule_t){0};  /* (a stop is cached too) */
  if ((seq & 1) == 0 && atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1, memory_order_acquire,
                                                                 memory_order_relaxed)) {
    atomic_store_explicit(&e->ip, ip, memory_order_release);
    atomic_store_explicit(&e->hdr, hdr, memory_order_release);
    atomic_store_explicit(&e->base, base, memory_order_release);
    atomic_store_explicit(&e->rule, am_unw_pack(&r), memory_order_release);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
  }
  return r;
}

/* Return addresses from the frame of (ip, sp, bp), innermost first. */
static int am_unw_walk(am_unwind_state_t *u, uintptr_t ip, uintptr_t sp, uintptr_t bp, void **out, int max) {
  bool bp_known = true;
  am_unw_obj_t obj = {0, 0, 0};
  int n = 0;
  for (uintptr_t key = ip; n < max; key = ip - 1) {   /* (a return address may be just past its
                                                         function: look up the call itself) */
    am_unw_rule_t r = am_unw_rule(u, key, &obj);
    uintptr_t base;
    if (r.flags & AM_UNW_CFA_RSP) base = sp;
    else if ((r.flags & AM_UNW_CFA_RBP) && bp_known) base = bp;
    else break;                                     /* AM_UNW_END, or no rule */
    uintptr_t cfa = base + (intptr_t)r.cfa_off;
    if (cfa <= sp || cfa - sp > AM_UNW_STEP_MAX || (cfa & 7) != 0) break;
    uintptr_t ra_at = cfa + 8 * (intptr_t)r.ra_off;
    if (ra_at < sp) break;
    uintptr_t ra = *(const uintptr_t *)ra_at;
    if (r.flags & AM_UNW_RBP_SAVED) {
      uintptr_t bp_at = cfa + (intptr_t)r.rbp_off;
      if (bp_at < sp || (bp_at & 7) != 0) break;
      bp = *(const uintptr_t *)bp_at;
    } else if (r.flags & AM_UNW_RBP_LOST) {
      bp_known = false;
    }
    if (ra < 4096) break;
    out[n++] = (void *)ra;
    ip = ra;
    sp = cfa;
  }
  return n;
}

/* The calling thread's return addresses, innermost first (from this function's own frame: its
 * registers are read at a known address); -1 when the walker is not set up. */
AM_INTERNAL am_noinline int _am_unwind_backtrace(void **out, int max) {
  am_unwind_state_t *u = atomic_load_explicit(&am_g.unwind, memory_order_acquire);
  if (u == NULL) return -1;
  if (!atomic_load_explicit(&am_g.unwind_ready, memory_order_acquire)) return 0;
  uintptr_t ip, sp, bp;
  __asm__ volatile("leaq 1f(%%rip), %0\n1:\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2" : "=&r"(ip), "=&r"(sp), "=&r"(bp));
  return am_unw_walk(u, ip, sp, bp, out, max);
}

/* Maps the walker's cache (once, when the profiler starts; false: no memory). */
AM_INTERNAL bool _am_unwind_init(void) {
  if (atomic_load_explicit(&am_g.unwind, memory_order_acquire) != NULL) return true;
  size_t bytes = (sizeof(am_unwind_state_t) + am_g.page_size - 1) & ~(am_g.page_size - 1);
  am_unwind_state_t *u = _am_os_map(bytes), *none = NULL;
  if (u == NULL) return false;
  /* The executable's own table, from its program headers: glibc's _dl_find_object does not give
   * it in a static program. */
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
  size_t phnum = getauxval(AT_PHNUM);
  uintptr_t load = 0;
  for (size_t i = 0; ph != NULL && i < phnum; i++)
    if (ph[i].p_type == PT_PHDR) load = (uintptr_t)ph - ph[i].p_vaddr;
  u->main_lo = UINTPTR_MAX;
  u->main_static = true;                /* (no program interpreter: nothing else is loaded by ld.so) */
  for (size_t i = 0; ph != NULL && i < phnum; i++)
    if (ph[i].p_type == PT_INTERP) u->main_static = false;
  for (size_t i = 0; ph != NULL && i < phnum; i++) {
    if (ph[i].p_type == PT_LOAD) {
      if (load + ph[i].p_vaddr < u->main_lo) u->main_lo = load + ph[i].p_vaddr;
      if (load + ph[i].p_vaddr + ph[i].p_memsz > u->main_hi) u->main_hi = load + ph[i].p_vaddr + ph[i].p_memsz;
    } else if (ph[i].p_type == PT_GNU_EH_FRAME) {
      u->main_hdr = load + ph[i].p_vaddr;
    }
  }
  if (!atomic_compare_exchange_strong_explicit(&am_g.unwind, &none, u, memory_order_acq_rel, memory_order_acquire))
    _am_os_free(u, bytes);              /* (another thread's came first) */
  return true;
}

#else

AM_INTERNAL bool _am_unwind_init(void) { return false; }
AM_INTERNAL int _am_unwind_backtrace(void **out, int max) {
  (void)out;
  (void)max;
  return -1;
}

#endif /* AM_PROF_UNWINDER */
