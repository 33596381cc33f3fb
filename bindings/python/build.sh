#!/usr/bin/env bash
# Builds libengine.so (NativeAOT, bindings/native) and copies it into the Python source tree (for working without installing; pip install builds its own copy into the wheel).
# Needs: .NET SDK 10, a C toolchain (gcc or clang) and binutils (objcopy) for the NativeAOT link step.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/bindings/native/bin/publish"
start=$(date +%s)
dotnet publish "$root/bindings/native/Engine.Native.csproj" -c Release -r linux-x64 -o "$out" -nologo
# Replace atomically: a running Python process keeps its mapping of the old file.
cp "$out/libengine.so" "$root/bindings/python/minedex/.libengine.so.tmp"
mv -f "$root/bindings/python/minedex/.libengine.so.tmp" "$root/bindings/python/minedex/libengine.so"
echo "libengine.so -> bindings/python/minedex/ ($(( $(date +%s) - start )) s)"
