"""Build script of the minedex wheel (metadata lives in pyproject.toml).

Two things pyproject.toml cannot say:

* the version comes from one place, ``<Version>`` in the repository's Directory.Build.props, which also stamps the
  native library (``minedex.__version__`` is read from it at import time and a test checks that both agree);
* the wheel carries ``libengine.so``, so it is a platform wheel (``py3-none-linux_x86_64``: the library is loaded
  with ctypes, so any CPython 3 works). The library is published from bindings/native with NativeAOT during the
  build (needs the .NET SDK, gcc or clang and objcopy), unless ``MINEDEX_NATIVE_LIBRARY`` names an already built
  ``libengine.so`` (CI builds it once and reuses it). On x86-64 the wheel also carries ``libengine-v4.so``, the same
  code compiled for x86-64-v4 (AVX-512), which ``minedex`` loads on CPUs that have it (NativeAOT compiles for one
  instruction set; the portable build runs the AVX2 kernels, ~1.7x slower on IVF-PQ fast-scan). With
  ``MINEDEX_NATIVE_LIBRARY``, ``libengine-v4.so`` is taken from the same directory when it is there.
"""

import os
import platform
import re
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # setuptools >= 70 ships its own
    from setuptools.command.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RIDS = {"x86_64": "linux-x64", "amd64": "linux-x64", "aarch64": "linux-arm64", "arm64": "linux-arm64"}


def version():
    props = os.path.join(ROOT, "Directory.Build.props")
    try:
        with open(props, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SystemExit(f"minedex: cannot read the version from {props} ({e}); build from the repository checkout.")
    found = re.findall(r"<Version>\s*([^<\s]+)\s*</Version>", text)
    if len(found) != 1:
        raise SystemExit(f"minedex: expected exactly one <Version> in {props}, found {len(found)}.")
    return found[0]


def native_libraries(build_temp):
    """{file name in the package: path}: libengine.so (x86-64-v3) and, on x86-64, libengine-v4.so (x86-64-v4) --
    from MINEDEX_NATIVE_LIBRARY (and libengine-v4.so beside it, when there), or fresh NativeAOT publishes."""
    given = os.environ.get("MINEDEX_NATIVE_LIBRARY")
    if given:
        if not os.path.isfile(given):
            raise SystemExit(f"minedex: MINEDEX_NATIVE_LIBRARY={given} is not a file.")
        libs = {"libengine.so": given}
        v4 = os.path.join(os.path.dirname(os.path.abspath(given)), "libengine-v4.so")
        if os.path.isfile(v4):
            libs["libengine-v4.so"] = v4
        return libs
    machine = platform.machine().lower()
    if platform.system() != "Linux" or machine not in RIDS:
        raise SystemExit(f"minedex: no NativeAOT runtime identifier for {platform.system()} {machine}; "
                         "build libengine.so yourself and set MINEDEX_NATIVE_LIBRARY.")
    if shutil.which("dotnet") is None:
        raise SystemExit("minedex: building libengine.so needs the .NET 10 SDK ('dotnet' is not on PATH); "
                         "or set MINEDEX_NATIVE_LIBRARY to a built libengine.so.")
    out = os.path.join(os.path.abspath(build_temp), "native")
    project = os.path.join(ROOT, "bindings", "native", "Engine.Native.csproj")
    subprocess.run(["dotnet", "publish", project, "-c", "Release", "-r", RIDS[machine], "-o", out, "-nologo"],
                   check=True)
    libs = {"libengine.so": os.path.join(out, "libengine.so")}
    if RIDS[machine] == "linux-x64":
        # its own intermediate and output directories: ILC writes the library under the output path, and a publish
        # whose inputs look up to date copies whatever is there (the other build's library, otherwise)
        obj = os.path.join(os.path.abspath(build_temp), "native-v4-obj") + os.sep
        bin_ = os.path.join(os.path.abspath(build_temp), "native-v4-bin") + os.sep
        subprocess.run(["dotnet", "publish", project, "-c", "Release", "-r", "linux-x64", "-o", out + "-v4", "-nologo",
                        "-p:IlcInstructionSet=x86-64-v4", f"-p:IntermediateOutputPath={obj}", f"-p:OutputPath={bin_}"],
                       check=True)
        libs["libengine-v4.so"] = os.path.join(out + "-v4", "libengine.so")
        check_instruction_sets(libs)
    return libs


def check_instruction_sets(libs):
    """Refuses a mix-up of the two builds: the portable one must hold no AVX-512 (zmm) instruction, the x86-64-v4 one
    must (skipped without objdump)."""
    if shutil.which("objdump") is None:
        return
    for name, want in (("libengine.so", False), ("libengine-v4.so", True)):
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", libs[name]], check=True, capture_output=True,
                             text=True).stdout
        if ("zmm" in asm) != want:
            raise SystemExit(f"minedex: {libs[name]} ({name}) {'lacks' if want else 'uses'} AVX-512 instructions.")


class BuildPyWithNative(build_py):
    """build_py that also places the native libraries in the package (never stale copies from the source tree)."""

    def run(self):
        super().run()
        for name in ("libengine.so", "libengine-v4.so"):  # a source-tree copy build_py may have picked up
            stale = os.path.join(self.build_lib, "minedex", name)
            if os.path.exists(stale):
                os.remove(stale)
        for name, lib in native_libraries(self.get_finalized_command("build").build_temp).items():
            target = os.path.join(self.build_lib, "minedex", name)
            shutil.copyfile(lib, target)
            os.chmod(target, 0o755)


class NativeDistribution(Distribution):
    """Carries native code: installed into platlib and built as a platform wheel."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """A platform wheel for any Python 3: the native code is a ctypes library, not a CPython extension."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(version=version(), distclass=NativeDistribution,
      cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel})
