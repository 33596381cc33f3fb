#!/usr/bin/env bash
# CI for the Python bindings: installs what it needs (Debian packages), builds libengine.so with NativeAOT, builds
# the minedex wheel around it, installs the wheel into a fresh virtual environment (system site packages: numpy,
# torch, pytest from Debian; no package index) and runs the pytest suite against the installed package, from outside
# the source tree. Called by .ci/run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."

# NativeAOT links with gcc (or clang) and strips with objcopy (binutils); the wheel build needs setuptools, wheel
# and venv; the tests need numpy, pytest and torch (the torch tests are part of the suite) for the system python3.
need=()
command -v gcc >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || need+=(gcc)
command -v objcopy >/dev/null 2>&1 || need+=(binutils)
/usr/bin/python3 -c "import numpy" >/dev/null 2>&1 || need+=(python3-numpy)
/usr/bin/python3 -c "import pytest" >/dev/null 2>&1 || need+=(python3-pytest)
/usr/bin/python3 -c "import torch" >/dev/null 2>&1 || need+=(python3-torch)
/usr/bin/python3 -c "import setuptools, wheel" >/dev/null 2>&1 || need+=(python3-setuptools python3-wheel)
/usr/bin/python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

bindings/python/build.sh

# The C header compiles as C99 and C++, and the C example runs against the fresh library.
lib=bindings/python/minedex
ccbin=$(command -v gcc || command -v clang)
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -I bindings/native bindings/native/examples/example.c \
  -L "$lib" -lengine -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-example-$$"
if command -v g++ >/dev/null 2>&1; then g++ -x c++ -fsyntax-only -Wall -Werror bindings/native/engine.h; fi
"${TMPDIR:-/tmp}/engine-example-$$" "${TMPDIR:-/tmp}/engine-example-$$.idx"
rm -f "${TMPDIR:-/tmp}/engine-example-$$"
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -I bindings/native bindings/native/examples/range.c \
  -L "$lib" -lengine -lm -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-range-$$"
"${TMPDIR:-/tmp}/engine-range-$$" && rm -f "${TMPDIR:-/tmp}/engine-range-$$"
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -I bindings/native bindings/native/examples/audit.c \
  -L "$lib" -lengine -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-audit-$$"
"${TMPDIR:-/tmp}/engine-audit-$$" && rm -f "${TMPDIR:-/tmp}/engine-audit-$$"
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -I bindings/native bindings/native/examples/multivector.c \
  -L "$lib" -lengine -lm -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-mv-$$"
"${TMPDIR:-/tmp}/engine-mv-$$" "${TMPDIR:-/tmp}/engine-mv-$$.dir" && rm -rf "${TMPDIR:-/tmp}/engine-mv-$$" "${TMPDIR:-/tmp}/engine-mv-$$.dir"
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -pthread -I bindings/native bindings/native/examples/handles.c \
  -L "$lib" -lengine -lm -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-handles-$$"
"${TMPDIR:-/tmp}/engine-handles-$$" "${TMPDIR:-/tmp}/engine-handles-$$.dir" && rm -rf "${TMPDIR:-/tmp}/engine-handles-$$" "${TMPDIR:-/tmp}/engine-handles-$$.dir"

# The wheel (reusing the library just built), installed offline into a fresh venv; pytest runs from a temporary
# directory against the installed package (conftest.py refuses the source tree when MINEDEX_TEST_INSTALLED is set).
work=$(mktemp -d "${TMPDIR:-/tmp}/minedex-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
MINEDEX_NATIVE_LIBRARY="$PWD/bindings/native/bin/publish/libengine.so" \
  "$work/venv/bin/pip" wheel --no-build-isolation --no-index --no-deps -w "$work/dist" ./bindings/python
rm -rf bindings/python/build bindings/python/minedex.egg-info
"$work/venv/bin/pip" install --no-index "$work"/dist/minedex-*.whl
tests="$PWD/bindings/python/tests"
(cd "$work" && MINEDEX_TEST_INSTALLED=1 "$work/venv/bin/python" -m pytest "$tests" -q -p no:cacheprovider)
# The wheel carries two builds (x86-64-v3 and, loaded on AVX-512 CPUs, x86-64-v4): the core modules again on the
# portable one, forced.
(cd "$work" && MINEDEX_TEST_INSTALLED=1 MINEDEX_ISA=x86-64-v3 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$tests/test_engine.py" "$tests/test_package.py" "$tests/test_hard_negatives.py" "$tests/test_mining.py" \
  "$tests/test_validation.py" "$tests/test_range.py" "$tests/test_graph.py")
