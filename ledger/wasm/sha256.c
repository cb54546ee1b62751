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

// Leaf hashes of count lines: line i is d[bounds[2i] : bounds[2i+1]]; hashes go to out[32i].
__attribute__((export_name("leaves"))) void leaves(const u8 *d, const u32 *bounds, u32 count, u8 *out) {
  for (u32 i = 0; i < count; i++) {
    u32 start = bounds[2 * i], end = bounds[2 * i + 1];
    hash_prefixed(0, d + start, end - start, out + 32 * i);
  }
}
