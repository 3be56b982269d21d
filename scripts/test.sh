#!/usr/bin/env bash
# The full test suite (README: "Tests"); .ci/run runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
# One worker per core; --dist loadfile keeps each file on one worker, so a file's module and
# session fixtures (block-16 builds, synthesised netlists) are made once, not once per worker.
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
