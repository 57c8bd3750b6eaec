"""Building the programs of export/cpp for the tests: CMake into a temporary folder, one target;
and export/cpp/make_inputs.py loaded as a module.

The tests skip only when cmake or a C++ compiler is missing; a failed configure or build fails every
test that needs the program (:meth:`Build.program`), with the build log in the message.
"""

import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest
import torch

CPP_DIR = Path(__file__).resolve().parents[2] / "export" / "cpp"
BUILD_TIMEOUT_S = 1200


def load_make_inputs(name: str):
    """export/cpp/make_inputs.py as a module (it is a script beside the programs, not a package)."""
    spec = importlib.util.spec_from_file_location(name, CPP_DIR / "make_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compiler() -> Optional[str]:
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Build:
    """The outcome of the session's CMake build: the program's path, or the log of what failed."""

    def __init__(self, executable: Optional[Path], log: str, seconds: float) -> None:
        self.executable = executable
        self.log = log
        self.seconds = seconds

    def program(self) -> Path:
        """The built program; fails the calling test (not skips it) if the build failed."""
        if self.executable is None:
            pytest.fail(f"building export/cpp failed:\n{self.log[-20000:]}", pytrace=False)
        return self.executable


def _step(command: List[str], log: List[str]) -> bool:
    log.append("$ " + " ".join(command))
    try:
        result = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as error:
        output = error.output.decode(errors="replace") if isinstance(error.output, bytes) else error.output or ""
        log.append(output)
        log.append(f"timed out after {BUILD_TIMEOUT_S} s")
        return False
    log.append(result.stdout)
    if result.returncode != 0:
        log.append(f"exit status {result.returncode}")
        return False
    return True


def build(tmp_path_factory, target: str) -> Build:
    """Configure export/cpp and build ``target`` (one of its programs) in a fresh temporary folder."""
    cmake = shutil.which("cmake")
    compiler = _compiler()
    missing = []
    if cmake is None:
        missing.append("cmake is not on PATH")
    if compiler is None:
        missing.append(f"no C++ compiler found ({'$CXX=' + os.environ['CXX'] if os.environ.get('CXX') else 'c++, g++, clang++'})")
    if missing:
        pytest.skip("cannot build export/cpp: " + "; ".join(missing))
    folder = tmp_path_factory.mktemp("cpp") / "build"
    log: List[str] = []
    start = time.perf_counter()
    configure = [
        cmake,
        "-S",
        str(CPP_DIR),
        "-B",
        str(folder),
        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
        "-DCMAKE_BUILD_TYPE=Release",
    ]
    ok = _step(configure, log) and _step([cmake, "--build", str(folder), "--target", target, "-j", "2"], log)
    seconds = time.perf_counter() - start
    executable = folder / target
    if ok and not executable.is_file():
        log.append(f"the build succeeded but left no {executable}")
        ok = False
    return Build(executable if ok else None, "\n".join(log), seconds)


