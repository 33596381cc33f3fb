"""Which minedex the tests import.

CI (bindings/python/ci.sh) installs the wheel into a fresh virtual environment and sets MINEDEX_TEST_INSTALLED=1:
the tests then import the installed package, and a package imported from this source tree is an error. Without
the variable (working on the bindings), the source tree is put first on sys.path; build its libengine.so with
bindings/python/build.sh.
"""

import os
import sys

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("MINEDEX_TEST_INSTALLED"):
    import minedex

    where = os.path.dirname(os.path.dirname(os.path.abspath(minedex.__file__)))
    if where == SOURCE:
        raise RuntimeError(f"MINEDEX_TEST_INSTALLED is set but minedex was imported from the source tree {SOURCE}.")
else:
    sys.path.insert(0, SOURCE)
