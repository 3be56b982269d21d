// What every CUDA kernel of gpu_ref/ shares (mac.cu: the reference architecture; fused.cu: the
// fused ones): the bit-level decoders, the reference scale product, the beat-stream rules, the
// canonical exhaustive order and the random-segment generator. Each is written once, here.
//
// Every value is decoded from its bits (no table is shared with the golden model), and every
// rounding is an explicit intrinsic (__fmul_rn, ...): build with --fmad=false (gpu_ref/device.py
// passes it to NVRTC with this folder on the include path).

#pragma once

#define UNIT_NVFP4 0
#define UNIT_IF4 1

// Lanes per beat: DEFAULT_BLOCK_SIZE of the formats layer (golden/formats.py), the block size
// of NVFP4 and IF4. The kernels hold one register per lane, so it is fixed at compile time;
// tests/test_gpu_ref.py checks that this is the formats layer's value.
#define LANES 16
// Total count of exhaustive single-beat cases: a code (4 bits), w code (4), a_sf (8), w_sf (8).
#define EXHAUSTIVE_CASES (1u << 24)

// f32(6/7) and f32(36/49): the exact rationals rounded once to binary32 (hex literals, so that
// no compile-time division or double rounding is involved; tests/test_gpu_ref.py checks them).
#define INT_EXPANSION 0x1.b6db6ep-1f
#define INT_EXPANSION_SQUARED 0x1.7829ccp-1f

// --------------------------------------------------------------------------------------------
// Decoders: bit patterns to exact values.

// E2M1: sign bit 3, exponent bits 2:1 (bias 1), mantissa bit 0. The magnitude in halves (so the
// integer q of the fused front end): exp 0 is subnormal (m halves), else (2 + m) << (exp - 1).
__device__ __forceinline__ unsigned e2m1_halves(unsigned code) {
    const unsigned exp = (code >> 1) & 3u;
    const unsigned man = code & 1u;
    return exp == 0 ? man : (2u + man) << (exp - 1);
}

// The same as binary32, exact. Code 0x8 is -0.
__device__ __forceinline__ float decode_e2m1(unsigned code) {
    const float magnitude = __fmul_rn((float)e2m1_halves(code), 0.5f);
    return __uint_as_float(__float_as_uint(magnitude) | ((code & 8u) << 28));
}

// INT4: two's complement; 0x8 decodes to -8 (outside the format, computed anyway).
__device__ __forceinline__ int decode_int4(unsigned code) {
    return (int)(code ^ 8u) - 8;
}

// Scale bits [6:0]: unsigned E4M3, bias 7, as its biased exponent and mantissa fields with the
// 448 rule applied (exp 15 with man 7 reads as man 6).
__device__ __forceinline__ void e4m3_fields(unsigned byte, unsigned& exp, unsigned& man) {
    exp = (byte >> 3) & 15u;
    man = byte & 7u;
    if (exp == 15u && man == 7u) man = 6u;
}

// The same as binary32, exact: exp 0 is subnormal (man/8 * 2^-6 = man * 2^-9); normal values
// are assembled as binary32 bits.
__device__ __forceinline__ float decode_e4m3(unsigned byte) {
    unsigned exp, man;
    e4m3_fields(byte, exp, man);
    if (exp == 0u) return __fmul_rn((float)man, 0x1p-9f);
    return __uint_as_float(((exp - 7u + 127u) << 23) | (man << 20));
}

// Whether a beat's a and w blocks are INT4: bit 7 of the scale byte, read by IF4 only.
__device__ __forceinline__ bool int_block(int unit, unsigned sf) {
    return unit == UNIT_IF4 && (sf & 0x80u);
}

// sf = dec(a_sf) * dec(w_sf), exact (4-bit significands); IF4 rounds once more by 6/7 when one
// block is INT4, by 36/49 when both are. A zero scale gives +0 (decoded scales are never negative,
// so the product is +0 already; the select states the rule rather than relying on that).
__device__ __forceinline__ float scale_product(int unit, unsigned a_sf, unsigned w_sf) {
    float sf = __fmul_rn(decode_e4m3(a_sf & 0x7Fu), decode_e4m3(w_sf & 0x7Fu));
    const unsigned n_int = (unsigned)int_block(unit, a_sf) + (unsigned)int_block(unit, w_sf);
    if (n_int == 1u) sf = __fmul_rn(sf, INT_EXPANSION);
    else if (n_int == 2u) sf = __fmul_rn(sf, INT_EXPANSION_SQUARED);
    return sf == 0.0f ? 0.0f : sf;
}

// Lane i's four-bit code of a beat's packed codes (lane i in bits [4i+3:4i]).
__device__ __forceinline__ unsigned lane_code(unsigned long long codes, int i) {
    return (unsigned)(codes >> (4 * i)) & 15u;
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

// The canonical exhaustive order: index = ((a_sf * 256 + w_sf) * 16 + a) * 16 + w.
struct ExhaustiveCase {
    unsigned a, w, a_sf, w_sf;
};

__device__ __forceinline__ ExhaustiveCase exhaustive_case(unsigned index) {
    return {(index >> 4) & 15u, index & 15u, index >> 16, (index >> 8) & 255u};
}

// --------------------------------------------------------------------------------------------
// Raw beat streams.

// The control inputs of one stream row, packed by the host into one byte per row exactly as the
// driver presents them to the MAC (gpu_ref/device.py, beat_flags).
#define BEAT_EN 1u      // en: the row is a beat; en=0 rows (bubbles) are ignored entirely
#define BEAT_FIRST 2u   // first: the beat opens a segment and closes the open one
#define BEAT_RESET 4u   // rst_n is pulsed before this row

// One thread per candidate closing beat: `closers` lists the rows with en=1 and first=1 (the host
// lists them, so that every thread of a warp has a segment to sum even when segments are long).
// The thread finds the segment its row closes by walking back from it under the MAC's rules:
//
// * a reset pulsed before the closing beat, or before any row after the open segment's last
//   beat, leaves nothing open: the reset discarded the segment, and no result comes out;
// * otherwise the segment runs back to its opening beat: the nearest earlier beat with first=1,
//   or, with no such beat since the last reset (or power-up), the first beat after that reset,
//   which adds onto the +0 reset state instead of loading it ("implicit").
//
// Outputs per candidate t: `start[t]` is the row of the opening beat of the segment that row
// closers[t] closes with a result, else -1; `out[t]` is the result's bit pattern where
// start[t] >= 0.
//
// Where candidate row `r` closes a segment with a result, the row of that segment's opening
// beat, else -1 (the rules above); `implicit` is set when the segment opened without first=1.
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

// The start of every stream kernel's thread: its candidate's closing row `r` and the segment's
// opening row `begin` (segment_begin), with start[t] preset to -1. False when the thread has
// nothing to compute (past the candidates, or nothing open).
__device__ __forceinline__ bool stream_segment(long long count,
                                               const long long* __restrict__ closers,
                                               const unsigned char* __restrict__ flags,
                                               long long* __restrict__ start, long long& t,
                                               long long& r, long long& begin, bool& implicit) {
    t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) return false;
    start[t] = -1;
    r = closers[t];
    begin = segment_begin(flags, r, implicit);
    return begin >= 0;
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

// One generated segment: its header decoded, and its beats on demand.
struct GenSegment {
    unsigned long long seed, base, header;
    unsigned length;
    bool shared_scales;

    __device__ __forceinline__ GenSegment(unsigned long long seed_, long long segment)
        : seed(seed_), base((unsigned long long)segment * GEN_SLOTS_PER_SEGMENT),
          header(gen_word(seed_, base)),
          length((header & 0xFFull) == 0 ? 9u + (unsigned)((header >> 8) & 0xFFull)
                                         : 1u + (unsigned)((header >> 8) & 7ull)),
          shared_scales((header >> 16) & 1ull) {}

    // Beat j's packed codes and scale bytes.
    __device__ __forceinline__ void beat(unsigned j, unsigned long long& codes_a,
                                         unsigned long long& codes_w, unsigned& a_sf,
                                         unsigned& w_sf) const {
        const unsigned long long slot = base + 1ull + 3ull * j;
        codes_a = gen_word(seed, slot);
        codes_w = gen_word(seed, slot + 1ull);
        const unsigned long long scales = shared_scales ? header >> 24 : gen_word(seed, slot + 2ull);
        a_sf = (unsigned)(scales & 0xFFull);
        w_sf = (unsigned)((scales >> 8) & 0xFFull);
    }
};
