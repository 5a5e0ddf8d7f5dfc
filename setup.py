"""Builds the native scanner (ext/) against system libraries found with pkg-config.

libhs (Vectorscan or Hyperscan), libcrypto and libzstd are required; ISA-L's
igzip is used for gzip when libisal is present, zlib otherwise.
"""

from __future__ import annotations

import glob
import shlex
import subprocess
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup


def pkg_config(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def library(name: str, required: bool) -> tuple[list[str], list[str]] | None:
    cflags, libs = pkg_config("--cflags", name), pkg_config("--libs", name)
    if cflags is None or libs is None:
        if required:
            sys.exit(f"setup.py: pkg-config cannot find {name}; run 'make setup' (or scripts/bootstrap.sh) first")
        return None
    return cflags, libs


cflags: list[str] = ["-O3", "-std=c11", "-Wall", "-Wno-unused-function"]
ldflags: list[str] = []
macros: list[tuple[str, str | None]] = []
for name in ("libhs", "libcrypto", "libzstd", "zlib"):
    c, l = library(name, required=True)  # type: ignore[misc]
    cflags += c
    ldflags += l
isal = library("libisal", required=False)
if isal is not None:
    cflags += isal[0]
    ldflags += isal[1]
    macros.append(("LAYERSCAN_HAVE_ISAL", "1"))

ext = Extension(
    "layerscan._scan",
    # every C source of the scanner (ext/_scan.c is what Cython makes of _scan.pyx)
    # md5x8.c is measured (benchmarks/md5x8.py), not called by the scanner: it stays out of the module.
    sources=["ext/_scan.pyx", *sorted(c for c in glob.glob("ext/*.c") if c not in ("ext/_scan.c", "ext/md5x8.c"))],
    include_dirs=["ext"],
    extra_compile_args=cflags,
    extra_link_args=ldflags,
    define_macros=macros,
)

setup(ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}))
