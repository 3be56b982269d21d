"""``python3 -m if4mac.gpu_ref [options]``: the CUDA cross-check, as ``if4mac gpu-check``.

For a GPU machine where the package is installed with ``pip install --no-deps
--no-build-isolation -e .`` (docs/gpu_ref.md): the ``if4mac`` command also loads the RTL and
synthesis commands, whose dependencies (Amaranth, ...) such a machine need not have.
"""

from .cli import gpu_check

gpu_check(prog_name="python3 -m if4mac.gpu_ref")
