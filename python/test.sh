#!/usr/bin/env bash
# Build the nanobox Python package as it is published (a manylinux wheel and an sdist), install the
# wheel where no Rust toolchain is reachable, and test what a user gets from `pip install nanobox`.
#
# Needs: cargo (rustup), /usr/bin/python3 (3.9+) and Debian's `python3-venv` package
# (`apt-get install -y python3-venv`); PyPI must be reachable (maturin, ziglang, pytest).
#
# What it does:
#   1. a build environment ($NANOBOX_BUILD_VENV, default target/python-build-venv) with maturin
#      and ziglang; maturin builds the abi3 wheel with zig as the linker against glibc 2.17
#      (`--zig --compatibility manylinux2014`; maturin refuses the tag if any symbol needs a newer
#      glibc) and the sdist, into target/wheels;
#   2. a fresh user environment ($NANOBOX_VENV, default target/python-venv) that gets pytest from
#      PyPI and then the wheel with `--no-index`, its commands run with a PATH that has no cargo or
#      rustc on it;
#   3. there: the README's Python example, the `nanobox` command (`nanobox run -- echo hello`),
#      and pytest on python/tests.
# The exit status is the first failure's. Extra arguments go to pytest (e.g. `python/test.sh -k spawn`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

python=${PYTHON:-/usr/bin/python3}
build_venv=${NANOBOX_BUILD_VENV:-target/python-build-venv}
venv=${NANOBOX_VENV:-target/python-venv}
wheels=target/wheels

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "python/test.sh: $python cannot create virtual environments (no ensurepip)." >&2
  echo "Install Debian's venv package first:  apt-get install -y python3-venv" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "python/test.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

echo "==> build environment $build_venv (maturin, ziglang)"
[ -x "$build_venv/bin/python" ] || "$python" -m venv "$build_venv"
"$build_venv/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2" "ziglang>=0.13"

echo "==> maturin build: the manylinux2014 wheel and the sdist"
rm -rf "$wheels"
# maturin finds zig through the ziglang package of the interpreter that runs it.
PATH="$root/$build_venv/bin:$PATH" "$build_venv/bin/maturin" build -q --release --zig \
  --compatibility manylinux2014 -m python/Cargo.toml --out "$wheels"
PATH="$root/$build_venv/bin:$PATH" "$build_venv/bin/maturin" sdist -m python/Cargo.toml --out "$wheels"
wheel=$(ls "$wheels"/nanobox-*-cp39-abi3-manylinux*_x86_64.whl)
sdist=$(ls "$wheels"/nanobox-*.tar.gz)
echo "built: $wheel"
echo "built: $sdist"
# What a PyPI user gets must carry its license and metadata, and the sdist everything to build.
"$python" - "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
need = ["License-Expression: Apache-2.0", "Requires-Python: >=3.9", "Project-URL: Repository,",
        "Classifier: Operating System :: POSIX :: Linux"]
missing = [n for n in need if n not in meta]
assert not missing, f"wheel METADATA lacks {missing}"
assert "](../" not in meta and "](docs/" not in meta, "the PyPI description links into the repository"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "wheel has no LICENSE"
assert any(n.endswith(".dist-info/entry_points.txt") for n in names), "wheel has no entry points"
entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
assert "nanobox=nanobox._cli:main" in entry.replace(" ", ""), entry
s = tarfile.open(sdist).getnames()
for want in ("/LICENSE", "/Cargo.lock", "/pyproject.toml", "/crates/nanobox/src/lib.rs", "/crates/nanobox-cli/src/lib.rs"):
    assert any(n.endswith(want) for n in s), f"sdist lacks {want}"
print("ok: wheel metadata, license, entry point; sdist contents")
EOF

echo "==> a fresh environment $venv: pytest from PyPI, then the wheel alone (--no-index)"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "pytest>=7"
# No Rust on PATH from here on: what runs is what the wheel installed.
norust_path="$root/$venv/bin:/usr/local/bin:/usr/bin:/bin"
if PATH=$norust_path command -v cargo >/dev/null || PATH=$norust_path command -v rustc >/dev/null; then
  echo "python/test.sh: cargo or rustc is on $norust_path: the wheel test would not show it needs none" >&2
  exit 1
fi
env PATH="$norust_path" "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index "$wheel"

echo "==> the README's Python example, from that environment"
# The first python block of README.md's "In Python" section, run as written.
example=$("$python" - <<'EOF'
import re
text = open("README.md").read()
section = text.split("## In Python", 1)[1]
print(re.search(r"```python\n(.*?)```", section, re.S).group(1))
EOF
)
out=$(cd /tmp && env PATH="$norust_path" "$root/$venv/bin/python" -c "$example")
[ "$out" = "hello" ] || { echo "python/test.sh: the README example printed '$out', not 'hello'" >&2; exit 1; }
echo "ok: the README example printed hello"

echo "==> the nanobox command from the wheel"
cmd=$(env PATH="$norust_path" sh -c 'command -v nanobox')
[ "$cmd" = "$root/$venv/bin/nanobox" ] || { echo "python/test.sh: nanobox resolves to '$cmd'" >&2; exit 1; }
out=$(cd /tmp && env PATH="$norust_path" nanobox run -- echo hello)
[ "$out" = "hello" ] || { echo "python/test.sh: 'nanobox run -- echo hello' printed '$out'" >&2; exit 1; }
set +e
(cd /tmp && env PATH="$norust_path" nanobox run -- sh -c 'exit 7')
code=$?
set -e
[ $code = 7 ] || { echo "python/test.sh: the command's exit status was $code, not the program's 7" >&2; exit 1; }
echo "ok: $cmd runs sandboxes and passes the exit status through"

echo "==> pytest python/tests"
# Run from the repository root so that `import nanobox` is the installed package, not python/nanobox.
exec env PATH="$norust_path" "$venv/bin/python" -m pytest -p no:cacheprovider python/tests "$@"
