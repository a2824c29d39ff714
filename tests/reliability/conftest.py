"""Run extreme cases in a child process under a memory cap.

A regression then fails one test (MemoryError or a kill inside the child) instead
of taking the machine down. Every case asserts the exit code, a one-line message
and, where a command should only read, that the files it was given are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The issue's ceiling for any command on the 12000x9000 photo.
TWO_GB = 2 * 1024**3
#: Address space is not resident memory: torch, numba and OpenBLAS reserve large
#: virtual ranges up front, so the cap on RLIMIT_AS is set well above the 2 GB the
#: cases must stay under; the resident peak is measured separately (ru_maxrss).
DEFAULT_ADDRESS_CAP = 12 * 1024**3

_RUNNER = r"""
import resource, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv = ["clusterlens", *sys.argv[2:]]
try:
    from clusterlens.cli.main import main
    main()
finally:
    # VmHWM is this program's own peak: ru_maxrss would also count the parent's pages
    # (Linux keeps the pre-exec high-water mark of the forked copy of pytest)
    with open("/proc/self/status") as status:
        peak_kib = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    sys.stderr.write(f"\n__PEAK_RSS_KIB__={peak_kib}\n")
"""


@dataclass
class CappedRun:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int

    @property
    def message(self) -> str:
        """stderr without the peak marker line."""
        return "\n".join(
            line for line in self.stderr.splitlines() if not line.startswith("__PEAK_RSS_KIB__")
        ).strip()


def run_capped(
    *args: str,
    cap_bytes: int = DEFAULT_ADDRESS_CAP,
    timeout: float = 300,
    cwd: str | Path | None = None,
) -> CappedRun:
    """Run ``clusterlens ARGS`` in a child capped at ``cap_bytes`` of address space."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(cap_bytes), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    peak = 0
    for line in done.stderr.splitlines():
        if line.startswith("__PEAK_RSS_KIB__="):
            peak = int(line.split("=", 1)[1]) * 1024
    return CappedRun(done.returncode, done.stdout, done.stderr, peak)


def digest(path: str | Path) -> str:
    """SHA-256 of a file, or of every file under a folder (names included)."""
    path = Path(path)
    hasher = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        hasher.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        hasher.update(file.read_bytes())
    return hasher.hexdigest()


@pytest.fixture
def capped():
    """The :func:`run_capped` runner, as a fixture."""
    return run_capped
