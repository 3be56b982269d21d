// CUDA reference of the if4mac "reference" MAC arithmetic (docs/spec.md, "MAC arithmetic").
//
// An independent second implementation of golden/mac.py: every value is decoded here from its
// bits (no table is shared with the golden model) and every rounding is an explicit intrinsic,
// __fmul_rn / __fadd_rn / __float2half_rn. Build with --fmad=false so that no multiply and add
// are ever contracted into an FMA (the intrinsics already forbid it; the flag covers any plain
// expression the compiler might see).
//
// Loaded at run time through CuPy (cupy.RawModule, NVRTC) by gpu_ref/device.py; the CPU test
// suite compiles it with nvcc to catch build breaks. The decoders, the scale product, the
// stream rules and the random-segment generator it shares with fused.cu are in mac_common.cuh.
//
// Units: UNIT_NVFP4 ignores the scale byte's bit 7 and always reads E2M1 elements;
// UNIT_IF4 reads bit 7 as "this block is INT4" and applies the 6/7 expansion.

#include <cuda_fp16.h>

#include "mac_common.cuh"

__device__ __forceinline__ float decode_element(unsigned code, bool is_int) {
    return is_int ? (float)decode_int4(code) : decode_e2m1(code);
}

// --------------------------------------------------------------------------------------------
// The arithmetic of one beat.

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
    const bool a_int = int_block(unit, a_sf), w_int = int_block(unit, w_sf);
#pragma unroll
    for (int i = 0; i < LANES; ++i) {
        const float m = scaled_product(sf, lane_code(codes_a, i), lane_code(codes_w, i), a_int,
                                       w_int);
        lane[i] = load ? m : __fadd_rn(lane[i], m);
    }
}

// --------------------------------------------------------------------------------------------
// Kernels.

// Every single-beat lane result m = rne32(p * sf), one thread each, in canonical order:
// index = ((a_sf * 256 + w_sf) * 16 + a) * 16 + w, written as the binary32 bit pattern.
extern "C" __global__ void exhaustive_lanes(int unit, unsigned* __restrict__ out) {
    const unsigned index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= EXHAUSTIVE_CASES) return;
    const ExhaustiveCase c = exhaustive_case(index);
    const float sf = scale_product(unit, c.a_sf, c.w_sf);
    out[index] = __float_as_uint(scaled_product(sf, c.a, c.w, int_block(unit, c.a_sf),
                                                int_block(unit, c.w_sf)));
}

// A raw beat stream, bubbles and reset pulses included: one thread per candidate closing beat
// (the rules are stream_segment's, mac_common.cuh), summing its segment's enabled rows.
extern "C" __global__ void stream_beats(int unit, const uint4* __restrict__ a_rows,
                                        const uint4* __restrict__ w_rows,
                                        const unsigned char* __restrict__ a_sf,
                                        const unsigned char* __restrict__ w_sf,
                                        const unsigned char* __restrict__ flags,
                                        const long long* __restrict__ closers, long long count,
                                        unsigned* __restrict__ out,
                                        long long* __restrict__ start) {
    long long t, r, begin;
    bool implicit;
    if (!stream_segment(count, closers, flags, start, t, r, begin, implicit)) return;
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
// The random-segment generator's segments (mac_common.cuh, GenSegment).

// Results of segments first .. first + count - 1 of the generator's sequence.
extern "C" __global__ void random_segments(int unit, unsigned long long seed, long long first,
                                           long long count, unsigned* __restrict__ out) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count) return;
    const GenSegment segment(seed, first + k);
    float lane[LANES];
    for (unsigned j = 0; j < segment.length; ++j) {
        unsigned long long codes_a, codes_w;
        unsigned a_sf, w_sf;
        segment.beat(j, codes_a, codes_w, a_sf, w_sf);
        beat(unit, lane, j == 0, codes_a, codes_w, a_sf, w_sf);
    }
    out[k] = __float_as_uint(tree_sum(lane));
}
