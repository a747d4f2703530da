"""Builds gilscope's C binary with make while the wheel is built, and puts it in the package
(gilscope/_bin/gilscope). The metadata is in pyproject.toml; this file only adds the build step
and the platform tag (the binary is native code; the Python part runs on any Python 3)."""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - without wheel, pip cannot build a wheel anyway
    bdist_wheel = None

ROOT = os.path.dirname(os.path.abspath(__file__))

# what the C build needs: (how to tell it is there, the Debian package that brings it)
NEEDS = [
    ("cc", "gcc"),
    ("make", "make"),
    ("/usr/include/libelf.h", "libelf-dev"),
    ("/usr/include/elfutils/libdw.h", "libdw-dev"),
    ("/usr/include/lzma.h", "liblzma-dev"),
    ("/usr/include/jansson.h", "libjansson-dev"),
    ("/usr/include/zlib.h", "zlib1g-dev"),
]


def missing_packages():
    out = []
    for what, pkg in NEEDS:
        there = os.path.exists(what) if what.startswith("/") else shutil.which(what)
        if not there:
            out.append(pkg)
    return out


class BuildWithBinary(build_py):
    """build_py, then `make` into the build directory and the binary into the package."""

    def run(self):
        super().run()
        missing = missing_packages()
        if missing:
            sys.exit("gilscope: building the C binary needs the Debian packages " + " ".join(missing) +
                     " (apt-get install " + " ".join(missing) + ", or run tests/deps.sh as root)")
        objdir = os.path.abspath(os.path.join(self.build_lib, "..", "gilscope-c"))
        jobs = str(os.cpu_count() or 1)
        proc = subprocess.run(["make", "-C", ROOT, "-j" + jobs, "BUILD=" + objdir, objdir + "/gilscope"])
        if proc.returncode != 0:
            sys.exit("gilscope: `make` of the C binary failed (see above); `make` in the checkout shows the "
                     "same error")
        dest = os.path.join(self.build_lib, "gilscope", "_bin")
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(os.path.join(objdir, "gilscope"), os.path.join(dest, "gilscope"))
        os.chmod(os.path.join(dest, "gilscope"), 0o755)


cmdclass = {"build_py": BuildWithBinary}

if bdist_wheel is not None:
    class PlatformWheel(bdist_wheel):
        """A platform wheel (the binary), for any Python 3 (no extension module)."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel

if __name__ == "__main__":  # (setuptools runs this file as __main__; tests import it)
    setup(cmdclass=cmdclass)
