"""RTL: Amaranth HDL for the FP32 units and the NVFP4 / IF4 MAC units."""
