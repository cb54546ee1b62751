// SHA-256 for the ledger's hot paths, compiled to WebAssembly (see build.sh).
// Exports: leaf and node hashes (RFC 6962 prefixes 0x00 / 0x01) and a batch of leaf hashes.
// No libc, no allocation: the caller lays out buffers in linear memory above __heap_base.
typedef unsigned int u32;
typedef unsigned char u8;

static const u32 K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline u32 be32(const u8 *p) {
  return ((u32)p[0] << 24) | ((u32)p[1] << 16) | ((u32)p[2] << 8) | (u32)p[3];
}

// Fully unrolled, with the message schedule in a rolling window of 16 words, so the compiler
// keeps everything in locals (WebAssembly has no registers to spill to but locals are cheap).
#define S0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define S1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define G0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define G1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#define MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))
#define ROUND(a, b, c, d, e, f, g, h, k, w) do { \
    u32 t1 = (h) + S1(e) + CH(e, f, g) + (k) + (w); \
    u32 t2 = S0(a) + MAJ(a, b, c); \
    (d) += t1; (h) = t1 + t2; } while (0)
#define W(i) (w[(i) & 15] += G1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + G0(w[((i) - 15) & 15]))
#define R8(i, WF) \
  ROUND(a, b, c, d, e, f, g, h, K[(i) + 0], WF((i) + 0)); \
  ROUND(h, a, b, c, d, e, f, g, K[(i) + 1], WF((i) + 1)); \
  ROUND(g, h, a, b, c, d, e, f, K[(i) + 2], WF((i) + 2)); \
  ROUND(f, g, h, a, b, c, d, e, K[(i) + 3], WF((i) + 3)); \
  ROUND(e, f, g, h, a, b, c, d, K[(i) + 4], WF((i) + 4)); \
  ROUND(d, e, f, g, h, a, b, c, K[(i) + 5], WF((i) + 5)); \
  ROUND(c, d, e, f, g, h, a, b, K[(i) + 6], WF((i) + 6)); \
  ROUND(b, c, d, e, f, g, h, a, K[(i) + 7], WF((i) + 7))
#define W0(i) (w[i])

static void compress(u32 *s, const u8 *p) {
  u32 w[16];
  for (int i = 0; i < 16; i++) w[i] = be32(p + 4 * i);
  u32 a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
  R8(0, W0);
  R8(8, W0);
  R8(16, W); R8(24, W); R8(32, W); R8(40, W); R8(48, W); R8(56, W);
  s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

static void init(u32 *s) {
  s[0] = 0x6a09e667; s[1] = 0xbb67ae85; s[2] = 0x3c6ef372; s[3] = 0xa54ff53a;
  s[4] = 0x510e527f; s[5] = 0x9b05688c; s[6] = 0x1f83d9ab; s[7] = 0x5be0cd19;
}

static void out32(const u32 *s, u8 *out) {
  for (int i = 0; i < 8; i++) {
    out[4 * i] = s[i] >> 24; out[4 * i + 1] = s[i] >> 16;
    out[4 * i + 2] = s[i] >> 8; out[4 * i + 3] = s[i];
  }
}

// SHA-256(prefix ‖ d[0:len]) into out.
static void hash_prefixed(u8 prefix, const u8 *d, u32 len, u8 *out) {
  u32 s[8];
  u8 block[64];
  init(s);
  u32 total = len + 1;
  u32 pos = 0; // position in the virtual message prefix ‖ d
  if (total >= 64) {
    block[0] = prefix;
    for (int i = 0; i < 63; i++) block[i + 1] = d[i];
    compress(s, block);
    pos = 64;
    while (total - pos >= 64) {
      compress(s, d + pos - 1);
      pos += 64;
    }
  }
  u32 r = total - pos;
  u32 i = 0;
  if (pos == 0) { block[0] = prefix; i = 1; }
  for (; i < r; i++) block[i] = d[pos + i - 1];
  block[r] = 0x80;
  for (i = r + 1; i < 64; i++) block[i] = 0;
  if (r + 1 > 56) {
    compress(s, block);
    for (i = 0; i < 56; i++) block[i] = 0;
  }
  unsigned long long bits = (unsigned long long)total * 8;
  for (i = 0; i < 8; i++) block[63 - i] = (u8)(bits >> (8 * i));
  compress(s, block);
  out32(s, out);
}

__attribute__((export_name("leaf"))) void leaf(const u8 *d, u32 len, u8 *out) {
  hash_prefixed(0, d, len, out);
}

__attribute__((export_name("plain"))) void plain(const u8 *d, u32 len, u8 *out) {
  // SHA-256 without a prefix, for testing against the reference.
  u32 s[8];
  u8 block[64];
  init(s);
  u32 pos = 0;
  while (len - pos >= 64) { compress(s, d + pos); pos += 64; }
  u32 r = len - pos, i;
  for (i = 0; i < r; i++) block[i] = d[pos + i];
  block[r] = 0x80;
  for (i = r + 1; i < 64; i++) block[i] = 0;
  if (r + 1 > 56) { compress(s, block); for (i = 0; i < 56; i++) block[i] = 0; }
  unsigned long long bits = (unsigned long long)len * 8;
  for (i = 0; i < 8; i++) block[63 - i] = (u8)(bits >> (8 * i));
  compress(s, block);
  out32(s, out);
}

__attribute__((export_name("node"))) void node(const u8 *l, const u8 *r, u8 *out) {
  u8 m[64];
  for (int i = 0; i < 32; i++) { m[i] = l[i]; m[32 + i] = r[i]; }
  hash_prefixed(1, m, 64, out);
}

// ---------------------------------------------------------------------------------------------
// Four messages at once in the 128-bit SIMD lanes (one 32-bit word per lane). The verifier's
// hashing is many short independent messages (leaf hashes of lines; node hashes of one tree
// level), so lanes stay busy.
#include <wasm_simd128.h>
typedef v128_t V;

#define VROTR(x, n) wasm_v128_or(wasm_u32x4_shr((x), (n)), wasm_i32x4_shl((x), 32 - (n)))
#define VS0(x) wasm_v128_xor(wasm_v128_xor(VROTR(x, 2), VROTR(x, 13)), VROTR(x, 22))
#define VS1(x) wasm_v128_xor(wasm_v128_xor(VROTR(x, 6), VROTR(x, 11)), VROTR(x, 25))
#define VG0(x) wasm_v128_xor(wasm_v128_xor(VROTR(x, 7), VROTR(x, 18)), wasm_u32x4_shr((x), 3))
#define VG1(x) wasm_v128_xor(wasm_v128_xor(VROTR(x, 17), VROTR(x, 19)), wasm_u32x4_shr((x), 10))
#define VADD(x, y) wasm_i32x4_add((x), (y))
#define VROUND(a, b, c, d, e, f, g, h, k, w) do { \
    V t1 = VADD(VADD(VADD(h, VS1(e)), VADD(wasm_v128_bitselect(f, g, e), wasm_i32x4_splat(k))), (w)); \
    V ab = wasm_v128_xor(a, b); \
    V t2 = VADD(VS0(a), wasm_v128_xor(b, wasm_v128_and(ab, bc))); \
    bc = ab; \
    (d) = VADD((d), t1); (h) = VADD(t1, t2); } while (0)
#define VW(i) (w[(i) & 15] = VADD(VADD(w[(i) & 15], VG1(w[((i) - 2) & 15])), \
    VADD(w[((i) - 7) & 15], VG0(w[((i) - 15) & 15]))))
#define VR8(i, WF) \
  VROUND(a, b, c, d, e, f, g, h, K[(i) + 0], WF((i) + 0)); \
  VROUND(h, a, b, c, d, e, f, g, K[(i) + 1], WF((i) + 1)); \
  VROUND(g, h, a, b, c, d, e, f, K[(i) + 2], WF((i) + 2)); \
  VROUND(f, g, h, a, b, c, d, e, K[(i) + 3], WF((i) + 3)); \
  VROUND(e, f, g, h, a, b, c, d, K[(i) + 4], WF((i) + 4)); \
  VROUND(d, e, f, g, h, a, b, c, K[(i) + 5], WF((i) + 5)); \
  VROUND(c, d, e, f, g, h, a, b, K[(i) + 6], WF((i) + 6)); \
  VROUND(b, c, d, e, f, g, h, a, K[(i) + 7], WF((i) + 7))

// Big-endian words i..i+3 of four blocks, transposed so that vector j holds word i+j of each.
static inline void load4(V *w, const u8 *p0, const u8 *p1, const u8 *p2, const u8 *p3, int o) {
  V x0 = wasm_v128_load(p0 + o), x1 = wasm_v128_load(p1 + o);
  V x2 = wasm_v128_load(p2 + o), x3 = wasm_v128_load(p3 + o);
  V t0 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7);
  V t2 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
  V y0 = wasm_i64x2_shuffle(t0, t2, 0, 2), y1 = wasm_i64x2_shuffle(t0, t2, 1, 3);
  V y2 = wasm_i64x2_shuffle(t1, t3, 0, 2), y3 = wasm_i64x2_shuffle(t1, t3, 1, 3);
#define BSWAP(v) wasm_i8x16_shuffle(v, v, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12)
  w[0] = BSWAP(y0); w[1] = BSWAP(y1); w[2] = BSWAP(y2); w[3] = BSWAP(y3);
#undef BSWAP
}

// One block of each of four messages; s[i] holds state word i of the four lanes.
static void compress4(V *s, const u8 *p0, const u8 *p1, const u8 *p2, const u8 *p3) {
  V w[16];
  load4(w, p0, p1, p2, p3, 0);
  load4(w + 4, p0, p1, p2, p3, 16);
  load4(w + 8, p0, p1, p2, p3, 32);
  load4(w + 12, p0, p1, p2, p3, 48);
  V a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
  // Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)), and each round's b ^ c is the last round's a ^ b.
  V bc = wasm_v128_xor(b, c);
  VR8(0, W0);
  VR8(8, W0);
  VR8(16, VW); VR8(24, VW); VR8(32, VW); VR8(40, VW); VR8(48, VW); VR8(56, VW);
  s[0] = VADD(s[0], a); s[1] = VADD(s[1], b); s[2] = VADD(s[2], c); s[3] = VADD(s[3], d);
  s[4] = VADD(s[4], e); s[5] = VADD(s[5], f); s[6] = VADD(s[6], g); s[7] = VADD(s[7], h);
}

static const u32 IV[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

// A message prefix ‖ d[0:len] being hashed in one lane: its first and last blocks are built in
// scratch (they hold the prefix and the padding); the blocks between are read in place.
typedef struct {
  const u8 *d;   // first byte of the message after the prefix
  u32 blocks;    // blocks in all
  u32 full;      // blocks wholly made of message bytes
  u32 next;      // next block to compress
  int index;     // which message (-1: the lane is idle)
  u8 head[64];
  u8 tail[128];
} Lane;

static const u8 ZERO_BLOCK[64];

static void lane_load(Lane *l, u8 prefix, const u8 *d, u32 len, int index) {
  u32 total = len + 1;
  l->d = d;
  l->blocks = (total + 8) / 64 + 1;
  l->full = total / 64;
  l->next = 0;
  l->index = index;
  if (l->full > 0) {
    l->head[0] = prefix;
    __builtin_memcpy(l->head + 1, d, 63);
  }
  u32 from = 64 * l->full; // offset in the message of the tail's first byte
  u32 rest = total - from;
  u32 tailBytes = 64 * (l->blocks - l->full);
  __builtin_memset(l->tail, 0, tailBytes);
  if (from == 0) {
    l->tail[0] = prefix;
    __builtin_memcpy(l->tail + 1, d, len);
  } else {
    __builtin_memcpy(l->tail, d + from - 1, rest);
  }
  l->tail[rest] = 0x80;
  unsigned long long bits = (unsigned long long)total * 8;
  for (int i = 0; i < 8; i++) l->tail[tailBytes - 1 - i] = (u8)(bits >> (8 * i));
}

static const u8 *lane_block(const Lane *l) {
  u32 k = l->next;
  if (l->index < 0) return ZERO_BLOCK;
  if (k >= l->full) return l->tail + 64 * (k - l->full);
  if (k == 0) return l->head;
  return l->d + 64 * k - 1;
}

static void put_digest(const u32 *s, int lane, u8 *out) {
  for (int i = 0; i < 8; i++) {
    u32 v = s[4 * i + lane];
    out[4 * i] = v >> 24; out[4 * i + 1] = v >> 16; out[4 * i + 2] = v >> 8; out[4 * i + 3] = v;
  }
}

// Leaf hashes of count lines, four lanes at once: line i is d[bounds[2i] : bounds[2i+1]]; hashes
// go to out[32i]. A lane that finishes a line takes the next one.
__attribute__((export_name("leaves"))) void leaves(const u8 *d, const u32 *bounds, u32 count, u8 *out) {
  static Lane lanes[4];
  static u32 st[32] __attribute__((aligned(16))); // st[4*i + lane]: state word i of each lane
  u32 taken = 0;
  int busy = 0;
  for (int j = 0; j < 4; j++) {
    if (taken < count) {
      lane_load(&lanes[j], 0, d + bounds[2 * taken], bounds[2 * taken + 1] - bounds[2 * taken], taken);
      taken++;
      busy++;
    } else {
      lanes[j].index = -1;
    }
    for (int i = 0; i < 8; i++) st[4 * i + j] = IV[i];
  }
  while (busy > 0) {
    V s[8];
    for (int i = 0; i < 8; i++) s[i] = wasm_v128_load(st + 4 * i);
    compress4(s, lane_block(&lanes[0]), lane_block(&lanes[1]), lane_block(&lanes[2]),
      lane_block(&lanes[3]));
    for (int i = 0; i < 8; i++) wasm_v128_store(st + 4 * i, s[i]);
    for (int j = 0; j < 4; j++) {
      Lane *l = &lanes[j];
      if (l->index < 0 || ++l->next < l->blocks) continue;
      put_digest(st, j, out + 32 * (u32)l->index);
      if (taken < count) {
        lane_load(l, 0, d + bounds[2 * taken], bounds[2 * taken + 1] - bounds[2 * taken], taken);
        taken++;
      } else {
        l->index = -1;
        busy--;
      }
      for (int i = 0; i < 8; i++) st[4 * i + j] = IV[i];
    }
  }
}

// Node hashes of count pairs: pair i is in[64i : 64i+64] (left then right); hashes go to
// out[32i]. out may equal in (or in + 32 when the caller shifted by one hash): each group of four
// pairs is copied into scratch before its hashes are written.
static void node_pairs(const u8 *in, u32 count, u8 *out) {
  u8 b0[4][64], b1[4][64];
  for (int j = 0; j < 4; j++) {
    __builtin_memset(b1[j], 0, 64);
    b1[j][1] = 0x80;
    b1[j][62] = (65 * 8) >> 8;
    b1[j][63] = (u8)(65 * 8);
  }
  for (u32 i = 0; i < count; i += 4) {
    u32 n = count - i < 4 ? count - i : 4;
    for (u32 j = 0; j < 4; j++) {
      const u8 *p = in + 64 * (i + (j < n ? j : 0));
      b0[j][0] = 1;
      __builtin_memcpy(b0[j] + 1, p, 63);
      b1[j][0] = p[63];
    }
    V s[8];
    for (int k = 0; k < 8; k++) s[k] = wasm_i32x4_splat(IV[k]);
    compress4(s, b0[0], b0[1], b0[2], b0[3]);
    compress4(s, b1[0], b1[1], b1[2], b1[3]);
    u32 st[32] __attribute__((aligned(16)));
    for (int k = 0; k < 8; k++) wasm_v128_store(st + 4 * k, s[k]);
    for (u32 j = 0; j < n; j++) put_digest(st, j, out + 32 * (i + j));
  }
}

// Appends count leaf hashes (at cur, 32 bytes each; overwritten) to a compact tree of `size`
// leaves whose perfect-subtree roots are slots[32h] for each set bit h of size. Afterwards the
// slots hold the roots for the set bits of size + count. Each level's hashes are independent, so
// they go through the four lanes together.
__attribute__((export_name("extend"))) void extend(u8 *slots, double size, u8 *cur, u32 count) {
  unsigned long long at = (unsigned long long)size; // index of cur[0] on the current level
  for (u32 h = 0; count > 0; h++) {
    const u8 *in = cur;
    u32 n = count, outs = 0;
    if (at & 1) {
      node(slots + 32 * h, in, cur); // reads both hashes before writing
      in += 32;
      n--;
      outs = 1;
    }
    u32 pairs = n / 2;
    node_pairs(in, pairs, cur + 32 * outs);
    outs += pairs;
    if (n & 1) __builtin_memcpy(slots + 32 * h, in + 64 * pairs, 32);
    at >>= 1;
    count = outs;
  }
}

// Number of newlines in d[0:len).
__attribute__((export_name("newlines"))) u32 newlines(const u8 *d, u32 len) {
  u32 n = 0, i = 0;
  V nl = wasm_i8x16_splat('\n');
  for (; i + 16 <= len; i += 16) {
    n += __builtin_popcount(wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(d + i), nl)));
  }
  for (; i < len; i++) n += d[i] == '\n';
  return n;
}

// The complete lines of d[0:len): bounds[2i] is where line i starts, bounds[2i+1] where its
// newline is. Returns the number of lines (what newlines() counts).
__attribute__((export_name("split"))) u32 split(const u8 *d, u32 len, u32 *bounds) {
  u32 count = 0, start = 0, i = 0;
  V nl = wasm_i8x16_splat('\n');
  for (; i + 16 <= len; i += 16) {
    u32 m = wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(d + i), nl));
    while (m) {
      u32 at = i + __builtin_ctz(m);
      bounds[2 * count] = start;
      bounds[2 * count + 1] = at;
      count++;
      start = at + 1;
      m &= m - 1;
    }
  }
  for (; i < len; i++) {
    if (d[i] == '\n') {
      bounds[2 * count] = start;
      bounds[2 * count + 1] = i;
      count++;
      start = i + 1;
    }
  }
  return count;
}
