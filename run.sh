#!/usr/bin/env bash
# lalm-audit developer entry point. Creates the environment (.venv) if absent, then:
#   ./run.sh demo [snakemake args...]   the full demo audit, end to end, into results/ (+ results/report.html)
#   ./run.sh test [pytest args...]      lint + unit + workflow + end-to-end tests
#   ./run.sh env                        only create/refresh the environment
# Needs Python >= 3.11 and access to PyPI. LALM_TORCH overrides the torch
# requirement (default torch==2.13.0; on a GPU machine pick the CUDA build you want).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${LALM_VENV:-.venv}
TORCH_SPEC=${LALM_TORCH:-torch==2.13.0}

find_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
  echo "lalm-audit needs Python >= 3.11 (python3.11 or newer on PATH)" >&2
  exit 1
}

ensure_env() {
  local stamp="$VENV/.lalm-audit-installed"
  local want
  want="$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo ">> creating $VENV" >&2
    "$(find_python)" -m venv "$VENV"
  fi
  # torch first: a bare or open-ended torch requirement would pull a multi-GB CUDA build.
  if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo ">> installing $TORCH_SPEC" >&2
    "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
  fi
  echo ">> installing lalm-audit and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet -e ".[dev,slurm,voxtral]"
  echo "$want" >"$stamp"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  env)
    ensure_env
    ;;
  demo)
    ensure_env
    "$VENV/bin/snakemake" --profile profiles/local --configfile config/demo.yaml "$@"
    # every figure and table with its caption, in one self-contained HTML file
    "$VENV/bin/snakemake" --profile profiles/local --configfile config/demo.yaml \
      --report results/report.html
    echo ">> report: results/report.html (tables: results/report/tables/, figures: PNG + PDF)" >&2
    ;;
  test)
    ensure_env
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
