"""Packaging hook (the metadata is in pyproject.toml).

Without transface/_native/libtransface.so this builds the pure wheel (py3-none-any) that finds
the library through TRANSFACE_LIBRARY or the repository's build folders. When build-wheel.sh has
put the self-contained library (and possibly the system libraries it needs) into
transface/_native/, the wheel bundles that folder and is a platform wheel: py3-none-<platform>
(ctypes, no Python extension, so no CPython ABI tag). The platform tag is the build machine's
(linux_x86_64) unless TRANSFACE_WHEEL_PLATFORM names one (build-wheel.sh sets a manylinux tag
only after checking the bundled libraries against it).
"""

import os
import pathlib

from setuptools import setup
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

NATIVE = pathlib.Path(__file__).resolve().parent / "transface" / "_native"


class NativeDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel although there is no extension module
        return True


class NativeWheel(bdist_wheel):
    def get_tag(self):
        _python, _abi, platform = super().get_tag()
        return "py3", "none", os.environ.get("TRANSFACE_WHEEL_PLATFORM") or platform


if (NATIVE / "libtransface.so").is_file():
    setup(distclass=NativeDistribution, cmdclass={"bdist_wheel": NativeWheel},
          package_data={"transface": ["_native/*"]})
else:
    setup()
