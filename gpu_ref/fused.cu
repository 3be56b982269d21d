// CUDA reference of the fused architectures, "fused-fp32" and "fused-exact" (docs/spec.md,
// section "Fused architectures"): a second implementation of golden/fused.py.
//
// It shares mac.cu's bit-level decoders, the reference scale product, the stream rules and the
// random-segment generator (mac_common.cuh; so a fused cross-check draws the very segments the
// reference one does), and adds
// the fused arithmetic: elements decoded to integers here, the block dot product S in int,
// fused-fp32 rounding with explicit __fmul_rn / __fadd_rn, and fused-exact entirely in integers
// (a signed 128-bit accumulator, one division by 49 and one round-to-nearest-even per result).
// Build with --fmad=false, as mac.cu. Loaded by gpu_ref/device.py (NVRTC, with gpu_ref/ on the
// include path) for `if4mac gpu-check --arch fused-fp32|fused-exact`.

#include "mac_common.cuh"

#define ARCH_FUSED_FP32 1
#define ARCH_FUSED_EXACT 2

// fused-exact's accumulator unit is 2^-20 (/ 49 for IF4); an overflowed segment is the quiet NaN.
#define EXACT_LSB_EXP (-20)
#define QNAN_BITS 0x7FC00000u

// q: twice an E2M1 value (so 0.5 -> 1, 6 -> 12), or the INT4 integer (0x8 -> -8).
__device__ __forceinline__ int element_q(unsigned code, bool is_int) {
    if (is_int) return decode_int4(code);
    const int magnitude = (int)e2m1_halves(code);
    return (code & 8u) ? -magnitude : magnitude;
}

// A beat's block dot product S = sum of q_a * q_w over the lanes, exact (|S| <= 16 * 144), and
// its kind: the number of INT4 operands (0..2), which sets S's binary point 2^-(2 - n_int).
struct BlockDot {
    int s, n_int;
};

__device__ __forceinline__ BlockDot block_dot(int unit, unsigned long long codes_a,
                                              unsigned long long codes_w, unsigned a_sf,
                                              unsigned w_sf) {
    const bool a_int = int_block(unit, a_sf), w_int = int_block(unit, w_sf);
    int s = 0;
#pragma unroll
    for (int i = 0; i < LANES; ++i)
        s += element_q(lane_code(codes_a, i), a_int) * element_q(lane_code(codes_w, i), w_int);
    return {s, (int)a_int + (int)w_int};
}

// An E4M3 scale as integers: dec = sig * 2^(e - 9), sig with its hidden bit (0..15), e 0..14.
__device__ __forceinline__ void scale_int(unsigned byte, unsigned& sig, unsigned& e) {
    unsigned exp, man;
    e4m3_fields(byte, exp, man);
    sig = exp == 0u ? man : 8u + man;
    e = exp == 0u ? 0u : exp - 1u;
}

// fused-fp32's beat: m = rne32((S * 2^-k) * sf), sf the reference's scale product.
__device__ __forceinline__ float fp32_beat(int unit, unsigned long long codes_a,
                                           unsigned long long codes_w, unsigned a_sf,
                                           unsigned w_sf) {
    const BlockDot dot = block_dot(unit, codes_a, codes_w, a_sf, w_sf);
    const int s = dot.s, n_int = dot.n_int;
    const float point = n_int == 0 ? 0.25f : (n_int == 1 ? 0.5f : 1.0f);
    // (float)s is exact (|s| < 2^24) and the power of two keeps it exact.
    const float x = __fmul_rn((float)s, point);
    return __fmul_rn(x, scale_product(unit, a_sf, w_sf));
}

// fused-exact's beat: S * sig_a * sig_w * c shifted onto the 2^-20 grid (c = 49, 42, 36 for IF4
// by INT4 count, 1 for NVFP4).
__device__ __forceinline__ __int128 exact_beat(int unit, unsigned long long codes_a,
                                               unsigned long long codes_w, unsigned a_sf,
                                               unsigned w_sf) {
    const BlockDot dot = block_dot(unit, codes_a, codes_w, a_sf, w_sf);
    const int s = dot.s, n_int = dot.n_int;
    unsigned sig_a, e_a, sig_w, e_w;
    scale_int(a_sf & 0x7Fu, sig_a, e_a);
    scale_int(w_sf & 0x7Fu, sig_w, e_w);
    const long long c = unit == UNIT_IF4 ? (n_int == 0 ? 49 : (n_int == 1 ? 42 : 36)) : 1;
    const long long n = (long long)s * (long long)(sig_a * sig_w) * c;
    // (e_a - 9) + (e_w - 9) - k + 20 with k = 2 - n_int.
    const unsigned shift = e_a + e_w + (unsigned)n_int;
    return (__int128)n << shift;
}

__device__ __forceinline__ int bit_length128(unsigned __int128 x) {
    const unsigned long long hi = (unsigned long long)(x >> 64);
    const unsigned long long lo = (unsigned long long)x;
    return hi ? 128 - __clzll((long long)hi) : (lo ? 64 - __clzll((long long)lo) : 0);
}

// rne32(A * 2^-20 / divisor) as bits; A = 0 gives +0. |A| is brought to 62 bits (a right shift
// ORs what it drops into bit 0, below every rounding point), divided with a sticky remainder,
// and the 56+ bit quotient rounded to 24 bits, ties to even.
__device__ unsigned exact_to_binary32(__int128 acc, unsigned divisor) {
    if (acc == 0) return 0u;
    const unsigned sign = acc < 0 ? 1u : 0u;
    const unsigned __int128 mag = sign ? (unsigned __int128)(-acc) : (unsigned __int128)acc;
    const int n = bit_length128(mag);
    unsigned long long x;
    int exp = EXACT_LSB_EXP;                       // x * 2^exp is |A| (sticky aside)
    if (n > 62) {
        const int d = n - 62;
        const bool dropped = (mag & ((((unsigned __int128)1) << d) - 1)) != 0;
        x = (unsigned long long)(mag >> d) | (dropped ? 1ull : 0ull);
        exp += d;
    } else {
        x = (unsigned long long)mag << (62 - n);
        exp -= 62 - n;
    }
    const unsigned long long q = x / divisor;
    const unsigned long long qs = (q << 1) | (x % divisor != 0 ? 1ull : 0ull);
    exp -= 1;                                      // qs * 2^exp
    const int nq = 64 - __clzll((long long)qs);
    const int shift = nq - 24;
    unsigned long long keep = qs >> shift;
    const unsigned long long rest = qs & ((1ull << shift) - 1ull);
    const unsigned long long half = 1ull << (shift - 1);
    if (rest > half || (rest == half && (keep & 1ull))) keep += 1ull;
    int top = shift;
    if (keep >> 24) {                              // rounding carried into 2^24
        keep >>= 1;
        top += 1;
    }
    const unsigned biased = (unsigned)(exp + top + 23 + 127);
    return (sign << 31) | (biased << 23) | (unsigned)(keep - (1ull << 23));
}

// One segment's result from its beats, for either architecture. `first_loads`: the segment
// opened with first=1 (else it adds onto the +0 reset state, which only matters for fused-fp32's
// sign of zero). `next_beat(codes_a, codes_w, a_sf, w_sf)` yields the segment's beats in order
// and returns false after the last. fused-exact counts them: a segment of more than
// `max_segment` beats overflows the accumulator and gives the quiet NaN.
template <typename NextBeat>
__device__ unsigned fused_segment(int arch, int unit, bool first_loads, long long max_segment,
                                  NextBeat next_beat) {
    unsigned long long codes_a, codes_w;
    unsigned a_sf, w_sf;
    if (arch == ARCH_FUSED_FP32) {
        float acc = 0.0f;
        bool load = first_loads;
        while (next_beat(codes_a, codes_w, a_sf, w_sf)) {
            const float m = fp32_beat(unit, codes_a, codes_w, a_sf, w_sf);
            acc = load ? m : __fadd_rn(acc, m);
            load = false;
        }
        return __float_as_uint(acc);
    }
    __int128 acc = 0;
    long long beats = 0;
    while (next_beat(codes_a, codes_w, a_sf, w_sf)) {
        if (++beats > max_segment) return QNAN_BITS;
        acc += exact_beat(unit, codes_a, codes_w, a_sf, w_sf);
    }
    return exact_to_binary32(acc, unit == UNIT_IF4 ? 49u : 1u);
}

// Every single-beat segment whose 16 lanes all hold one code pair, one thread each, in
// exhaustive_lanes' order: index = ((a_sf * 256 + w_sf) * 16 + a) * 16 + w.
extern "C" __global__ void fused_exhaustive(int arch, int unit, long long max_segment,
                                            unsigned* __restrict__ out) {
    const unsigned index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= EXHAUSTIVE_CASES) return;
    const unsigned long long every_lane = 0x1111111111111111ull;
    const ExhaustiveCase c = exhaustive_case(index);
    bool left = true;
    out[index] = fused_segment(arch, unit, true, max_segment,
                               [&](unsigned long long& ca, unsigned long long& cw,
                                   unsigned& asf, unsigned& wsf) {
                                   ca = c.a * every_lane;
                                   cw = c.w * every_lane;
                                   asf = c.a_sf;
                                   wsf = c.w_sf;
                                   const bool more = left;
                                   left = false;
                                   return more;
                               });
}

// A raw beat stream, as mac.cu's stream_beats: one thread per candidate closing row, which finds
// its segment with stream_segment and sums the segment's enabled rows (bubbles skipped).
extern "C" __global__ void fused_stream_beats(int arch, int unit, const uint4* __restrict__ a_rows,
                                              const uint4* __restrict__ w_rows,
                                              const unsigned char* __restrict__ a_sf,
                                              const unsigned char* __restrict__ w_sf,
                                              const unsigned char* __restrict__ flags,
                                              const long long* __restrict__ closers,
                                              long long count, long long max_segment,
                                              unsigned* __restrict__ out,
                                              long long* __restrict__ start) {
    long long t, r, begin;
    bool implicit;
    if (!stream_segment(count, closers, flags, start, t, r, begin, implicit)) return;
    long long k = begin;
    out[t] = fused_segment(arch, unit, !implicit, max_segment,
                           [&](unsigned long long& ca, unsigned long long& cw, unsigned& asf,
                               unsigned& wsf) {
                               while (k < r && !(flags[k] & BEAT_EN)) ++k;
                               if (k >= r) return false;
                               ca = pack_row(a_rows[k]);
                               cw = pack_row(w_rows[k]);
                               asf = a_sf[k];
                               wsf = w_sf[k];
                               ++k;
                               return true;
                           });
    start[t] = begin;
}

// The generator's segments first .. first + count - 1 (mac.cu's random_segments, fused).
extern "C" __global__ void fused_random_segments(int arch, int unit, unsigned long long seed,
                                                 long long first, long long count,
                                                 long long max_segment,
                                                 unsigned* __restrict__ out) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count) return;
    const GenSegment segment(seed, first + k);
    unsigned j = 0;
    out[k] = fused_segment(arch, unit, true, max_segment,
                           [&](unsigned long long& ca, unsigned long long& cw, unsigned& asf,
                               unsigned& wsf) {
                               if (j >= segment.length) return false;
                               segment.beat(j++, ca, cw, asf, wsf);
                               return true;
                           });
}
