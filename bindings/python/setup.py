"""Build script of the minedex wheel (metadata lives in pyproject.toml).

Two things pyproject.toml cannot say:

* the version comes from one place, ``<Version>`` in the repository's Directory.Build.props, which also stamps the
  native library (``minedex.__version__`` is read from it at import time and a test checks that both agree);
* the wheel carries ``libengine.so``, so it is a platform wheel (``py3-none-linux_x86_64``: the library is loaded
  with ctypes, so any CPython 3 works). The library is published from bindings/native with NativeAOT during the
  build (needs the .NET SDK, gcc or clang and objcopy), unless ``MINEDEX_NATIVE_LIBRARY`` names an already built
  ``libengine.so`` (CI builds it once and reuses it).
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


def native_library(build_temp):
    """Path of libengine.so: MINEDEX_NATIVE_LIBRARY, or a fresh NativeAOT publish of bindings/native."""
    given = os.environ.get("MINEDEX_NATIVE_LIBRARY")
    if given:
        if not os.path.isfile(given):
            raise SystemExit(f"minedex: MINEDEX_NATIVE_LIBRARY={given} is not a file.")
        return given
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
    return os.path.join(out, "libengine.so")


class BuildPyWithNative(build_py):
    """build_py that also places libengine.so in the package (never a stale copy from the source tree)."""

    def run(self):
        super().run()
        lib = native_library(self.get_finalized_command("build").build_temp)
        target = os.path.join(self.build_lib, "minedex", "libengine.so")
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
