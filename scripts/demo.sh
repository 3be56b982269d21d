#!/usr/bin/env bash
# The toolkit's main job on a built-in example (README: "Quick start").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
.venv/bin/if4mac demo --workdir build/demo
