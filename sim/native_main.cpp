// The native testbench of if4mac.sim.native: plays a drive plan on a Verilated MAC (class
// Vdut, built with --prefix Vdut) and writes every result. No Verilog testbench and no
// timing engine: one input write and two evaluations of the model per clock cycle.
//
//   native_tb PLAN OUT        exit 0 and "end CYCLES OVERRUN OVERFLOW" on stdout when the plan
//                             ran out (the sticky flags at the end; 0 where the top has none)
//
// PLAN: a header (magic "IF4PLAN1", u32 block size, u32 bytes per lane vector), then one
// record per clock cycle: u8 flags (bit 2 rst_n, bit 1 en, bit 0 first), u8 a_sf, u8 w_sf,
// then a_in and w_in, each little-endian over LANE_BYTES bytes (lane i at bits 4i+3..4i).
// OUT: one 16-byte record per cycle with done=1 after its rising edge: u64 cycle, u32 acc,
// u32 zero; flushed every few thousand cycles so the caller can show progress.
//
// Cycle k as the Verilog testbench plays it: inputs change while clk is low, the rising edge
// samples them, and done/acc are read after that edge (nothing in the MAC uses the falling
// edge, so reading before or after it is the same). rst_n is asynchronous: it takes effect in
// the clk=0 evaluation, before the edge, as it does in the event-driven simulators.

#include "Vdut.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace {

constexpr char kMagic[8] = {'I', 'F', '4', 'P', 'L', 'A', 'N', '1'};
// Records read and results buffered per I/O call: big enough that I/O is a small part of a
// cycle's cost, small enough to stay in cache.
constexpr size_t kChunk = 1 << 14;
// Results written out at least this often (in cycles), for the caller's progress bar.
constexpr uint64_t kFlushEvery = 1 << 16;

// a_in / w_in are at most 64 bits (B <= 16, which native.py checks): an integer in Verilator's
// model, set from the little-endian lane bytes.
template <typename Port>
inline void set_port(Port& port, const uint8_t* bytes, size_t n) {
    static_assert(std::is_integral_v<Port>, "lane ports wider than 64 bits are not supported");
    uint64_t v = 0;
    std::memcpy(&v, bytes, n);   // x86-64 and aarch64 are little-endian, as the file
    port = static_cast<Port>(v);
}

struct Result {
    uint64_t cycle;
    uint32_t acc;
    uint32_t pad;
};
static_assert(sizeof(Result) == 16, "result record layout");

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s PLAN OUT\n", argv[0]);
        return 2;
    }
    FILE* in = std::fopen(argv[1], "rb");
    FILE* out = std::fopen(argv[2], "wb");
    if (!in || !out) {
        std::fprintf(stderr, "cannot open %s\n", !in ? argv[1] : argv[2]);
        return 2;
    }
    char magic[8];
    uint32_t block_size = 0, lane_bytes = 0;
    if (std::fread(magic, 1, 8, in) != 8 || std::memcmp(magic, kMagic, 8) != 0 ||
        std::fread(&block_size, 4, 1, in) != 1 || std::fread(&lane_bytes, 4, 1, in) != 1) {
        std::fprintf(stderr, "%s: not a native plan file\n", argv[1]);
        return 2;
    }
    if (block_size != IF4MAC_BLOCK_SIZE || lane_bytes != (IF4MAC_BLOCK_SIZE + 1) / 2) {
        std::fprintf(stderr, "%s: plan for block size %u, the model has %d\n", argv[1],
                     block_size, IF4MAC_BLOCK_SIZE);
        return 2;
    }
    const size_t record = 3 + 2 * size_t(lane_bytes);

    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    auto dut = std::make_unique<Vdut>(context.get(), "dut");

    std::vector<uint8_t> buffer(kChunk * record);
    std::vector<Result> results;
    results.reserve(kChunk);
    uint64_t cycle = 0, flushed_at = 0;
    dut->clk = 0;
    for (;;) {
        const size_t got = std::fread(buffer.data(), record, kChunk, in);
        for (size_t r = 0; r < got; ++r, ++cycle) {
            const uint8_t* rec = buffer.data() + r * record;
            dut->rst_n = (rec[0] >> 2) & 1;
            dut->en = (rec[0] >> 1) & 1;
            dut->first = rec[0] & 1;
            dut->a_sf = rec[1];
            dut->w_sf = rec[2];
            set_port(dut->a_in, rec + 3, lane_bytes);
            set_port(dut->w_in, rec + 3 + lane_bytes, lane_bytes);
            dut->clk = 0;
            dut->eval();
            dut->clk = 1;
            dut->eval();
            if (dut->done) results.push_back({cycle, uint32_t(dut->acc), 0});
        }
        if (!results.empty() && (got < kChunk || cycle - flushed_at >= kFlushEvery ||
                                 results.size() >= kChunk)) {
            std::fwrite(results.data(), sizeof(Result), results.size(), out);
            std::fflush(out);
            results.clear();
            flushed_at = cycle;
        }
        if (got < kChunk) break;
    }
    if (std::ferror(in)) {
        std::fprintf(stderr, "%s: read error\n", argv[1]);
        return 1;
    }
#if IF4MAC_HAS_OVERRUN
    const int overrun = dut->overrun;
#else
    const int overrun = 0;
#endif
#if IF4MAC_HAS_OVERFLOW
    const int overflow = dut->overflow;
#else
    const int overflow = 0;
#endif
    dut->final();
    if (std::fclose(out) != 0) {
        std::fprintf(stderr, "%s: write error\n", argv[2]);
        return 1;
    }
    std::printf("end %llu %d %d\n", static_cast<unsigned long long>(cycle), overrun, overflow);
    return 0;
}
