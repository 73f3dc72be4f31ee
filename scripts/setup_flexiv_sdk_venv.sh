#!/usr/bin/env bash
# Side virtual environment with the real Flexiv RDK wheel (no torch), for the conformance test
# tests/test_flexiv_sdk_conformance.py (pytest -m sdk) and for probing the SDK by hand.
#
# flexivrdk ships wheels for CPython 3.10 and 3.12 only, so this venv uses one of those interpreters
# (pyenv's, or python3.12 / python3.10 on PATH) even where the project runs on 3.11.
# FLEXIVRDK_VERSION pins what `flexivrdk>=1.9,<2.0` (setup.py extra "flexiv") resolves to today.
# Usage: bash scripts/setup_flexiv_sdk_venv.sh [venv dir, default .venv-flexivrdk]
# Exits 0 without a venv (and says why) when neither interpreter exists; 1 when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-flexivrdk}"
FLEXIVRDK_VERSION="${FLEXIVRDK_VERSION:-1.9.4.1}"

PY=""
for cand in "$HOME"/.pyenv/versions/3.12.*/bin/python "$HOME"/.pyenv/versions/3.10.*/bin/python \
            "$(command -v python3.12 || true)" "$(command -v python3.10 || true)"; do
  if [ -n "$cand" ] && [ -x "$cand" ]; then PY="$cand"; break; fi
done
if [ -z "$PY" ]; then
  echo "setup_flexiv_sdk_venv: no CPython 3.10 or 3.12 found (pyenv or PATH); flexivrdk has no wheel for $(python3 -V 2>&1); the sdk tests will skip"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "flexivrdk==$FLEXIVRDK_VERSION" numpy pyyaml scipy; then
  rm -rf "$VENV"  # no half-made venv: the sdk tests skip instead of failing on a missing module
  echo "setup_flexiv_sdk_venv: installing flexivrdk==$FLEXIVRDK_VERSION failed" >&2
  exit 1
fi
"$VENV/bin/python" -c "import flexivrdk; print('flexivrdk', flexivrdk.__version__, 'in $VENV')"
