"""RTL simulation: cocotb testbenches and the `if4mac sim` flow."""
