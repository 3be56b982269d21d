"""The golden model: bit-exact numpy definition of the formats, quantizers and MAC arithmetic.

Pure numpy (plus ml_dtypes for E4M3 rounding); importable without any simulator. Every other
part of if4mac (RTL tests, cocotb scoreboards, the CUDA cross-check) is judged against it.
"""

from .formats import *  # noqa: F401,F403
from .config import *  # noqa: F401,F403
from .mac import *      # noqa: F401,F403
from .fused import *    # noqa: F401,F403
from .random_streams import *  # noqa: F401,F403
from .stimulus import *  # noqa: F401,F403
