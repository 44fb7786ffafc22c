#include "snapshot/crc32.h"

#include <zlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ferry::snapshot {

namespace internal {

uint32_t Crc32Zlib(uint32_t crc, const void* data, size_t size) {
  return static_cast<uint32_t>(
      crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
}

#if defined(__x86_64__)
bool Crc32Folds() {
  static const bool have = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  return have;
}
#else
bool Crc32Folds() { return false; }
#endif

}  // namespace internal

#if defined(__x86_64__)
namespace {

// Folding as in V. Gopal, E. Ozturk et al., "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ Instruction" (Intel, 2009), with the paper's constants for the bit-reflected gzip
// polynomial: k1/k2 fold four 128-bit lanes 512 bits on, k3/k4 fold 128 bits on, k5 takes 64
// bits to 32, and P'/mu are the polynomial and floor(x^64 / P) of the Barrett reduction. The
// tests hold the result to zlib's at every length, alignment and starting value.
constexpr long long kK1 = 0x0154442bd4, kK2 = 0x01c6e41596;
constexpr long long kK3 = 0x01751997d0, kK4 = 0x00ccaa009e;
constexpr long long kK5 = 0x0163cd6124;
constexpr long long kPoly = 0x01db710641, kMu = 0x01f7011641;

// `x` (128 bits of remainder) carried 128 * n bits further by k = (x^.. high, x^.. low), plus the
// next 128 bits of data.
__attribute__((target("pclmul,sse4.1"))) inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  const __m128i low = _mm_clmulepi64_si128(x, k, 0x00);
  const __m128i high = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(low, high), next);
}

__attribute__((target("pclmul,sse4.1"))) inline __m128i Load(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// The CRC register (zlib's crc, inverted) after `size` bytes. REQUIRES: size >= 64, a multiple
// of 16.
__attribute__((target("pclmul,sse4.1"))) uint32_t FoldRegister(uint32_t reg, const uint8_t* p,
                                                               size_t size) {
  __m128i a = _mm_xor_si128(Load(p), _mm_cvtsi32_si128(static_cast<int>(reg)));
  __m128i b = Load(p + 16), c = Load(p + 32), d = Load(p + 48);
  p += 64;
  size -= 64;
  const __m128i k12 = _mm_set_epi64x(kK2, kK1);
  for (; size >= 64; p += 64, size -= 64) {  // four lanes, 512 bits a step
    a = Fold(a, k12, Load(p));
    b = Fold(b, k12, Load(p + 16));
    c = Fold(c, k12, Load(p + 32));
    d = Fold(d, k12, Load(p + 48));
  }
  const __m128i k34 = _mm_set_epi64x(kK4, kK3);
  a = Fold(Fold(Fold(a, k34, b), k34, c), k34, d);
  for (; size >= 16; p += 16, size -= 16) a = Fold(a, k34, Load(p));
  // 128 bits to 64, then 64 to 32 (Barrett).
  const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
  a = _mm_xor_si128(_mm_srli_si128(a, 8), _mm_clmulepi64_si128(a, k34, 0x10));
  const __m128i upper = _mm_srli_si128(a, 4);
  a = _mm_clmulepi64_si128(_mm_and_si128(a, low32), _mm_set_epi64x(0, kK5), 0x00);
  a = _mm_xor_si128(a, upper);
  const __m128i poly = _mm_set_epi64x(kMu, kPoly);
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(a, low32), poly, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(a, t), 1));
}

}  // namespace
#endif

uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (size >= 64 && internal::Crc32Folds()) {
    const size_t folded = size & ~size_t{15};
    crc = ~FoldRegister(~crc, p, folded);
    p += folded;
    size -= folded;
  }
#endif
  return size == 0 ? crc : internal::Crc32Zlib(crc, p, size);
}

}  // namespace ferry::snapshot
