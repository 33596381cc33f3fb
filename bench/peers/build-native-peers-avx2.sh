#!/usr/bin/env bash
# The native peers for a machine without AVX-512 (e.g. AMD Zen 3, Intel before Skylake-SP): the shared
# ../shared/peers/build-native-peers.sh builds faiss' avx512 module, which such a CPU cannot load. This runs that
# script with faiss' avx2 module (FAISS_OPT_LEVEL=avx2, -march=native) instead; hnswlib is built the same way.
# Usage: bench/peers/build-native-peers-avx2.sh PREFIX   (about 15-30 min on 2 cores)
# Then:  PYTHONPATH=PREFIX bench/ivf/ivf-vs-faiss.sh ...   (each peer row's `version` says which faiss was loaded)
set -euo pipefail
shared=$(cd "$(dirname "$0")/../../../shared/peers" && pwd)
script=$(mktemp)
trap 'rm -f "$script"' EXIT
sed -e 's/FAISS_OPT_LEVEL=avx512/FAISS_OPT_LEVEL=avx2/' -e 's/swigfaiss_avx512/swigfaiss_avx2/' \
    -e "s#^here=.*#here=$shared#" "$shared/build-native-peers.sh" > "$script"
grep -q 'FAISS_OPT_LEVEL=avx2' "$script" || { echo "build-native-peers.sh changed: no FAISS_OPT_LEVEL to replace" >&2; exit 1; }
bash "$script" "$@"
