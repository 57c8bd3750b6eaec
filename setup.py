"""Builds the one compiled part, the two-nearest-label distance kernel (Cython, no NumPy C API).

Everything else is in pyproject.toml; `pip install .` (or `make`) runs this through setuptools.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("unetweights.weightmaps._two_nearest", ["unetweights/weightmaps/_two_nearest.pyx"], extra_compile_args=["-O3"])],
        compiler_directives={"language_level": "3"},
    )
)
