#!/usr/bin/env bash
# CI for the Python bindings: installs what it needs (Debian packages), builds libengine.so with NativeAOT,
# runs the pytest suite. Called by .ci/run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."

# NativeAOT links with gcc (or clang) and strips with objcopy (binutils); the tests need numpy and pytest
# for the system python3.
need=()
command -v gcc >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || need+=(gcc)
command -v objcopy >/dev/null 2>&1 || need+=(binutils)
/usr/bin/python3 -c "import numpy" >/dev/null 2>&1 || need+=(python3-numpy)
/usr/bin/python3 -c "import pytest" >/dev/null 2>&1 || need+=(python3-pytest)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

bindings/python/build.sh

# The C header compiles as C99 and C++, and the C example runs against the fresh library.
lib=bindings/python/engine
ccbin=$(command -v gcc || command -v clang)
"$ccbin" -std=c99 -Wall -Wextra -pedantic -Werror -I bindings/native bindings/native/examples/example.c \
  -L "$lib" -lengine -Wl,-rpath,"$lib" -o "${TMPDIR:-/tmp}/engine-example-$$"
if command -v g++ >/dev/null 2>&1; then g++ -x c++ -fsyntax-only -Wall -Werror bindings/native/engine.h; fi
"${TMPDIR:-/tmp}/engine-example-$$" "${TMPDIR:-/tmp}/engine-example-$$.idx"
rm -f "${TMPDIR:-/tmp}/engine-example-$$"

/usr/bin/python3 -m pytest bindings/python/tests -q -p no:cacheprovider
