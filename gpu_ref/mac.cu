// CUDA reference of the if4mac "reference" MAC arithmetic (docs/spec.md, "MAC arithmetic").
//
// An independent second implementation of golden/mac.py: every value is decoded here from its
// bits (no table is shared with the golden model) and every rounding is an explicit intrinsic,
// __fmul_rn / __fadd_rn / __float2half_rn. Build with --fmad=false so that no multiply and add
// are ever contracted into an FMA (the intrinsics already forbid it; the flag covers any plain
// expression the compiler might see).
//
// Loaded at run time through CuPy (cupy.RawModule, NVRTC) by gpu_ref/device.py; the CPU test
// suite compiles it with nvcc to catch build breaks.
//
// Units: UNIT_NVFP4 ignores the scale byte's bit 7 and always reads E2M1 elements;
// UNIT_IF4 reads bit 7 as "this block is INT4" and applies the 6/7 expansion.
// The random-segment generator at the end is mirrored bit for bit by gpu_ref/generator.py.

#include <cuda_fp16.h>

#define UNIT_NVFP4 0
#define UNIT_IF4 1

// Lanes per beat: the block size of NVFP4 and IF4. The kernels hold one accumulator per lane in
// registers, so the count is fixed at compile time.
#define LANES 16
// Total count of exhaustive single-beat cases: a code (4 bits), w code (4), a_sf (8), w_sf (8).
#define EXHAUSTIVE_CASES (1u << 24)

// f32(6/7) and f32(36/49): the exact rationals rounded once to binary32 (hex literals, so that
// no compile-time division or double rounding is involved; tests/test_gpu_ref.py checks them).
#define INT_EXPANSION 0x1.b6db6ep-1f
#define INT_EXPANSION_SQUARED 0x1.7829ccp-1f

// --------------------------------------------------------------------------------------------
// Decoders: bit patterns to binary32, each exact.

// E2M1: sign bit 3, exponent bits 2:1 (bias 1), mantissa bit 0. Magnitude in halves:
// exp 0 is subnormal (m halves), else (2 + m) halves << (exp - 1). Code 0x8 is -0.
__device__ __forceinline__ float decode_e2m1(unsigned code) {
    const unsigned exp = (code >> 1) & 3u;
    const unsigned man = code & 1u;
    const unsigned halves = exp == 0 ? man : (2u + man) << (exp - 1);
    const float magnitude = __fmul_rn((float)halves, 0.5f);
    return __uint_as_float(__float_as_uint(magnitude) | ((code & 8u) << 28));
}

// INT4: two's complement; 0x8 decodes to -8 (outside the format, computed anyway).
__device__ __forceinline__ float decode_int4(unsigned code) {
    return (float)((int)(code ^ 8u) - 8);
}

// Scale bits [6:0]: unsigned E4M3, bias 7. exp 0 is subnormal (man/8 * 2^-6 = man * 2^-9);
// exp 15 with man 7 reads as 448 (man 6). Normal values are assembled as binary32 bits.
__device__ __forceinline__ float decode_e4m3(unsigned byte) {
    const unsigned exp = (byte >> 3) & 15u;
    unsigned man = byte & 7u;
    if (exp == 15u && man == 7u) man = 6u;
    if (exp == 0u) return __fmul_rn((float)man, 0x1p-9f);
    return __uint_as_float(((exp - 7u + 127u) << 23) | (man << 20));
}

__device__ __forceinline__ float decode_element(unsigned code, bool int_block) {
    return int_block ? decode_int4(code) : decode_e2m1(code);
}

// --------------------------------------------------------------------------------------------
// The arithmetic of one beat.

// sf = dec(a_sf) * dec(w_sf), exact (4-bit significands); IF4 rounds once more by 6/7 when one
// block is INT4, by 36/49 when both are. A zero scale gives +0 (decoded scales are never negative,
// so the product is +0 already; the select states the rule rather than relying on that).
__device__ __forceinline__ float scale_product(int unit, unsigned a_sf, unsigned w_sf) {
    float sf = __fmul_rn(decode_e4m3(a_sf & 0x7Fu), decode_e4m3(w_sf & 0x7Fu));
    if (unit == UNIT_IF4) {
        const unsigned n_int = (a_sf >> 7) + (w_sf >> 7);
        if (n_int == 1u) sf = __fmul_rn(sf, INT_EXPANSION);
        else if (n_int == 2u) sf = __fmul_rn(sf, INT_EXPANSION_SQUARED);
    }
    return sf == 0.0f ? 0.0f : sf;
}

// p = a * w rounded to binary16 (exact: |p| <= 64 with at most 4 significant bits), then
// m = rne32(p * sf). The sign of a zero product is sign(a) xor sign(w), as IEEE gives it.
__device__ __forceinline__ float scaled_product(float sf, unsigned a, unsigned w,
                                                bool a_int, bool w_int) {
    const __half p = __float2half_rn(__fmul_rn(decode_element(a, a_int), decode_element(w, w_int)));
    return __fmul_rn(__half2float(p), sf);
}

// Pairwise tree over the lane registers: (0,1), (2,3), ..., then pairs of those, each add
// rounded to binary32. LANES is a power of two, so no lane passes up unpaired.
__device__ __forceinline__ float tree_sum(float (&lane)[LANES]) {
#pragma unroll
    for (int stride = 1; stride < LANES; stride *= 2) {
#pragma unroll
        for (int i = 0; i < LANES; i += 2 * stride) lane[i] = __fadd_rn(lane[i], lane[i + stride]);
    }
    return lane[0];
}

// One beat into the lane registers: load on the segment's first beat, accumulate otherwise.
// `codes_a` / `codes_w` hold the 16 four-bit codes of the beat, lane i in bits [4i+3:4i].
__device__ __forceinline__ void beat(int unit, float (&lane)[LANES], bool load,
                                     unsigned long long codes_a, unsigned long long codes_w,
                                     unsigned a_sf, unsigned w_sf) {
    const float sf = scale_product(unit, a_sf, w_sf);
    const bool a_int = unit == UNIT_IF4 && (a_sf & 0x80u);
    const bool w_int = unit == UNIT_IF4 && (w_sf & 0x80u);
#pragma unroll
    for (int i = 0; i < LANES; ++i) {
        const float m = scaled_product(sf, (unsigned)(codes_a >> (4 * i)) & 15u,
                                       (unsigned)(codes_w >> (4 * i)) & 15u, a_int, w_int);
        lane[i] = load ? m : __fadd_rn(lane[i], m);
    }
}

// Sixteen byte-wide codes (one uint4 of a beat row) packed into nibbles, lane 0 lowest.
__device__ __forceinline__ unsigned long long pack_row(uint4 row) {
    const unsigned word[4] = {row.x, row.y, row.z, row.w};
    unsigned long long packed = 0;
#pragma unroll
    for (int i = 0; i < LANES; ++i) {
        const unsigned long long code = (word[i / 4] >> (8 * (i % 4))) & 15u;
        packed |= code << (4 * i);
    }
    return packed;
}

// --------------------------------------------------------------------------------------------
// Kernels.

// Every single-beat lane result m = rne32(p * sf), one thread each, in canonical order:
// index = ((a_sf * 256 + w_sf) * 16 + a) * 16 + w, written as the binary32 bit pattern.
extern "C" __global__ void exhaustive_lanes(int unit, unsigned* __restrict__ out) {
    const unsigned index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= EXHAUSTIVE_CASES) return;
    const unsigned w = index & 15u;
    const unsigned a = (index >> 4) & 15u;
    const unsigned w_sf = (index >> 8) & 255u;
    const unsigned a_sf = index >> 16;
    const float sf = scale_product(unit, a_sf, w_sf);
    const bool a_int = unit == UNIT_IF4 && (a_sf & 0x80u);
    const bool w_int = unit == UNIT_IF4 && (w_sf & 0x80u);
    out[index] = __float_as_uint(scaled_product(sf, a, w, a_int, w_int));
}

// The control inputs of one stream row, packed by the host into one byte per row exactly as the
// driver presents them to the MAC (gpu_ref/device.py, beat_flags).
#define BEAT_EN 1u      // en: the row is a beat; en=0 rows (bubbles) are ignored entirely
#define BEAT_FIRST 2u   // first: the beat opens a segment and closes the open one
#define BEAT_RESET 4u   // rst_n is pulsed before this row

// A raw beat stream, bubbles and reset pulses included. One thread per candidate closing beat:
// `closers` lists the rows with en=1 and first=1 (the host lists them, so that every thread of
// a warp has a segment to sum even when segments are long). The thread finds the segment its
// row closes by walking back from it under the MAC's rules, and computes its result:
//
// * a reset pulsed before the closing beat, or before any row after the open segment's last
//   beat, leaves nothing open: the reset discarded the segment, and no result comes out;
// * otherwise the segment runs back to its opening beat: the nearest earlier beat with first=1,
//   or, with no such beat since the last reset (or power-up), the first beat after that reset,
//   which adds onto the +0 lane registers instead of loading them ("implicit").
//
// Outputs per candidate t: `start[t]` is the row of the opening beat of the segment that row
// closers[t] closes with a result, else -1; `out[t]` is the result's bit pattern where
// start[t] >= 0.
// Where candidate row `r` closes a segment with a result, the row of that segment's opening
// beat, else -1 (the rules above); `implicit` is set when the segment opened without first=1.
// Shared by stream_beats and fused.cu's fused_stream_beats.
__device__ long long segment_begin(const unsigned char* __restrict__ flags, long long r,
                                   bool& implicit) {
    implicit = true;                    // stopped by power-up or a reset, not by a first=1 beat
    const unsigned closing = flags[r];
    if ((closing & (BEAT_EN | BEAT_FIRST)) != (BEAT_EN | BEAT_FIRST) || (closing & BEAT_RESET))
        return -1;
    // Walk back. `begin` is the earliest beat seen so far: the opening beat once the walk stops.
    long long begin = -1;
    for (long long k = r - 1; k >= 0; --k) {
        const unsigned f = flags[k];
        if (f & BEAT_EN) {
            begin = k;
            if (f & BEAT_FIRST) {
                implicit = false;
                break;
            }
        }
        if (f & BEAT_RESET) break;      // the reset came before row k: nothing earlier counts
    }
    return begin;                       // -1: nothing open (power-up or a reset, then row r)
}

extern "C" __global__ void stream_beats(int unit, const uint4* __restrict__ a_rows,
                                        const uint4* __restrict__ w_rows,
                                        const unsigned char* __restrict__ a_sf,
                                        const unsigned char* __restrict__ w_sf,
                                        const unsigned char* __restrict__ flags,
                                        const long long* __restrict__ closers, long long count,
                                        unsigned* __restrict__ out,
                                        long long* __restrict__ start) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) return;
    start[t] = -1;
    const long long r = closers[t];
    bool implicit;
    const long long begin = segment_begin(flags, r, implicit);
    if (begin < 0) return;              // nothing open: power-up or a reset, then this beat
    float lane[LANES];
#pragma unroll
    for (int i = 0; i < LANES; ++i) lane[i] = 0.0f;    // the +0 registers after reset/power-up
    for (long long k = begin; k < r; ++k) {
        if (!(flags[k] & BEAT_EN)) continue;
        beat(unit, lane, k == begin && !implicit, pack_row(a_rows[k]), pack_row(w_rows[k]),
             a_sf[k], w_sf[k]);
    }
    out[t] = __float_as_uint(tree_sum(lane));
    start[t] = begin;
}

// --------------------------------------------------------------------------------------------
// The random-segment generator (version "splitmix64-v1"), mirrored by gpu_ref/generator.py.
//
// word(seed, c) is output c of SplitMix64 seeded with `seed`: mix64(seed + (c + 1) * GAMMA).
// Segment s owns counters s * 1024 .. s * 1024 + 1023:
//   slot 0              header h: length and scale mode;
//   slots 1 + 3j, +1, +2 beat j: a codes (16 nibbles), w codes (16 nibbles), scales word.
// Length: if h[7:0] == 0 (1 in 256), 9 + h[15:8] (9..264), else 1 + h[10:8] (1..8).
// Scales: if h[16], every beat of the segment uses a_sf = h[31:24], w_sf = h[39:32] (so that
// long sums of one magnitude, cancellation and rounding ties are common); else beat j uses
// a_sf = s_j[7:0], w_sf = s_j[15:8] of its own scales word.

#define GEN_GAMMA 0x9E3779B97F4A7C15ull
#define GEN_SLOTS_PER_SEGMENT 1024ull

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ unsigned long long gen_word(unsigned long long seed,
                                                       unsigned long long counter) {
    return mix64(seed + (counter + 1ull) * GEN_GAMMA);
}

__device__ __forceinline__ unsigned gen_length(unsigned long long header) {
    return (header & 0xFFull) == 0 ? 9u + (unsigned)((header >> 8) & 0xFFull)
                                   : 1u + (unsigned)((header >> 8) & 7ull);
}

// Results of segments first .. first + count - 1 of the generator's sequence.
extern "C" __global__ void random_segments(int unit, unsigned long long seed, long long first,
                                           long long count, unsigned* __restrict__ out) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count) return;
    const unsigned long long base = (unsigned long long)(first + k) * GEN_SLOTS_PER_SEGMENT;
    const unsigned long long header = gen_word(seed, base);
    const unsigned length = gen_length(header);
    const bool shared_scales = (header >> 16) & 1ull;
    float lane[LANES];
    for (unsigned j = 0; j < length; ++j) {
        const unsigned long long slot = base + 1ull + 3ull * j;
        const unsigned long long codes_a = gen_word(seed, slot);
        const unsigned long long codes_w = gen_word(seed, slot + 1ull);
        const unsigned long long scales = shared_scales ? header >> 24 : gen_word(seed, slot + 2ull);
        beat(unit, lane, j == 0, codes_a, codes_w, (unsigned)(scales & 0xFFull),
             (unsigned)((scales >> 8) & 0xFFull));
    }
    out[k] = __float_as_uint(tree_sum(lane));
}
