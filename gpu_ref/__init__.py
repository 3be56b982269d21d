"""CUDA reference of the MAC arithmetic and the GPU cross-check of the golden model."""
