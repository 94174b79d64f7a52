#!/usr/bin/env bash
# Build the nanobox Python package and run its tests, from a fresh Debian machine with Rust.
#
# Needs: cargo (rustup), /usr/bin/python3 (3.9+) and Debian's `python3-venv` package
# (`apt-get install -y python3-venv`); PyPI must be reachable (maturin, pytest).
#
# What it does: creates a virtual environment ($NANOBOX_VENV, default target/python-venv), installs
# maturin and pytest into it from PyPI, installs the package with `pip install ./python` (maturin
# builds the abi3 wheel of the Rust extension), and runs pytest on python/tests.
# The exit status is pytest's. Extra arguments go to pytest (e.g. `python/test.sh -k spawn`).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-/usr/bin/python3}
venv=${NANOBOX_VENV:-target/python-venv}

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "python/test.sh: $python cannot create virtual environments (no ensurepip)." >&2
  echo "Install Debian's venv package first:  apt-get install -y python3-venv" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "python/test.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
fi
# The venv's scripts (maturin) on PATH, as `activate` would do.
PATH="$(cd "$venv" && pwd)/bin:$PATH"
export PATH
echo "==> installing maturin and pytest into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2" "pytest>=7"

echo "==> pip install ./python (maturin builds the extension)"
# The venv's maturin builds the wheel (--no-build-isolation saves downloading it again); a plain
# `pip install ./python` does the same in an isolated build environment.
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps ./python

echo "==> pytest python/tests"
# Run from the repository root so that `import nanobox` is the installed package, not python/nanobox.
exec "$venv/bin/python" -m pytest -p no:cacheprovider python/tests "$@"
