#!/usr/bin/env bash
# Builds libengine.so (NativeAOT, bindings/native) and copies it into the Python source tree (for working without
# installing; pip install builds its own copies into the wheel). Two builds of the same code: libengine.so for
# x86-64-v3 (AVX2; the portable C ABI library) and libengine-v4.so for x86-64-v4 (AVX-512), which minedex loads
# instead on CPUs that have AVX-512 (NativeAOT compiles for one instruction set; the JIT picks at run time).
# Needs: .NET SDK 10, a C toolchain (gcc or clang) and binutils (objcopy) for the NativeAOT link step.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/bindings/native/bin/publish"
start=$(date +%s)
dotnet publish "$root/bindings/native/Engine.Native.csproj" -c Release -r linux-x64 -o "$out" -nologo
# The x86-64-v4 build: its own intermediate and output directories (ILC writes the library under the output path
# first, and an up-to-date publish copies whatever is there), so the two builds never mix.
dotnet publish "$root/bindings/native/Engine.Native.csproj" -c Release -r linux-x64 -o "$out-v4" -nologo \
  -p:IlcInstructionSet=x86-64-v4 -p:IntermediateOutputPath="$root/bindings/native/obj/Release-v4/" \
  -p:OutputPath="$root/bindings/native/bin/Release-v4/"
# Never ship a mix-up: the portable build must hold no AVX-512 (zmm) instruction, the x86-64-v4 build must.
if command -v objdump >/dev/null 2>&1; then
  [ "$(objdump -d --no-show-raw-insn "$out/libengine.so" | grep -c zmm)" = 0 ] || { echo "build.sh: $out/libengine.so uses AVX-512"; exit 1; }
  [ "$(objdump -d --no-show-raw-insn "$out-v4/libengine.so" | grep -c zmm)" != 0 ] || { echo "build.sh: $out-v4/libengine.so has no AVX-512 code"; exit 1; }
fi
cp "$out-v4/libengine.so" "$out/libengine-v4.so"
# Replace atomically: a running Python process keeps its mapping of the old file.
for f in libengine.so libengine-v4.so; do
  cp "$out/$f" "$root/bindings/python/minedex/.$f.tmp"
  mv -f "$root/bindings/python/minedex/.$f.tmp" "$root/bindings/python/minedex/$f"
done
echo "libengine.so, libengine-v4.so -> bindings/python/minedex/ ($(( $(date +%s) - start )) s)"
