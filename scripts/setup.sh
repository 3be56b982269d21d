#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, a virtual environment in
# .venv, and the project installed into it in editable mode. Quick when already done.
# Run (not sourced) by demo.sh and test.sh; run it alone to just set up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# System packages: each is looked for by the command it provides, so a machine that has them
# (however they got there) skips apt entirely.
need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
command -v sta >/dev/null 2>&1 || need_apt+=(opensta)
# The OSU 0.18 um standard cells: the second open library of `if4mac synth --library osu018`.
[ -f /usr/share/qflow/tech/osu018/osu018_stdcells.lib ] || need_apt+=(qflow-tech-osu018)
# Verilator's FST wave writer (if4mac sim --waves) compiles against lz4.
[ -f /usr/include/lz4.h ] || need_apt+=(liblz4-dev)
# The C compiler builds synth/fast_clock.c, which spares ABC a system call per clock read.
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed since the last install.
stamp=.venv/.if4mac-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing if4mac and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# The YoWASP tools (sby, Yosys, smtbmc for `if4mac formal`) compile their WebAssembly on the
# first run on a machine and print a "Preparing to run ..." line that breaks smtbmc: run
# each once here (minutes the first time, under a second after).
.venv/bin/python -m if4mac.formal.tools
