#!/usr/bin/env bash
# The toolkit's main job on a built-in example (README: "Quick start"):
#  1. quantize an example activation and weight tensor to IF4, build the MAC stimulus of their
#     dot products and compute the golden results;
#  2. generate the IF4 MAC's Verilog;
#  3. simulate the stimulus on that Verilog with Verilator (cocotb) and check every result
#     against golden (if4mac sim exits non-zero with a mismatch report otherwise);
#  4. synthesize NVFP4 and IF4 at block size 2 on both targets and write the comparison report
#     (reports/ holds the committed block-16 report, `if4mac report`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
out=build/demo
if4mac=.venv/bin/if4mac

$if4mac demo --workdir "$out"
$if4mac verilog --unit if4 -o "$out/if4_mac.v" --compat
echo "4. simulating $out/if4_stimulus.json on Verilator ..."
$if4mac sim --unit if4 --stimulus "$out/if4_stimulus.json" --simulator verilator > "$out/if4_rtl.json"
if cmp -s "$out/if4_rtl.json" "$out/if4_golden.json"; then
  echo "   RTL results == golden results ($(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$out/if4_rtl.json") segments) -> $out/if4_rtl.json"
else
  echo "   RTL and golden results differ: $out/if4_rtl.json vs $out/if4_golden.json" >&2
  exit 1
fi
echo "5. synthesizing NVFP4 and IF4 at block size 2 (ASIC: Nangate 45 + OpenSTA; FPGA: ECP5 + nextpnr), a few minutes ..."
$if4mac report --block-size 2 --output-dir "$out/report" --workdir "$out/report-work"
echo "   report: $out/report/synthesis.md (the committed reports/ hold the block-16 numbers)"
