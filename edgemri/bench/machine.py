"""The machine a benchmark ran on, and the code version: figures without these are not honest."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (x86 "model name", ARM "Model"/"Hardware"), else platform."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model", "Hardware", "cpu model") and value and key not in found:
            found[key] = value
    for key in ("model name", "Model", "cpu model", "Hardware"):
        if key in found:
            return found[key]
    return platform.processor() or platform.machine()


#: The instruction-set tiers that change which int8/fp32 kernels win, best first, each with the
#: /proc/cpuinfo flags that mark it. Why: the CPU model name alone does not tell two machines
#: apart — a 2-core "AMD EPYC" here was once AVX2-only (Zen 3) and once AVX-512 VNNI + BF16
#: (Zen 5), and runtime hints tuned on one were read as this CPU's on the other.
ISA_TIERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("amx", frozenset({"amx_tile", "amx_int8"})),
    ("avx512-vnni", frozenset({"avx512f", "avx512_vnni"})),
    ("avx512", frozenset({"avx512f"})),
    ("avx2", frozenset({"avx2", "fma"})),
    ("sse4", frozenset({"sse4_2"})),
    ("neon-i8mm", frozenset({"asimd", "i8mm"})),
    ("neon-dotprod", frozenset({"asimd", "asimddp"})),
    ("neon", frozenset({"asimd"})),
)


def cpu_isa(flags: set[str] | None = None) -> str | None:
    """The best :data:`ISA_TIERS` entry this CPU has (None where /proc/cpuinfo has no flags)."""
    if flags is None:
        flags = cpu_flags()
    for name, needs in ISA_TIERS:
        if needs <= flags:
            return name
    return None


def cpu_flags() -> set[str]:
    """The first CPU's feature flags (x86 "flags", ARM "Features"); empty where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def os_name() -> str:
    """PRETTY_NAME from /etc/os-release (e.g. "Debian GNU/Linux 12"), plus the kernel."""
    pretty = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    kernel = f"{platform.system()} {platform.release()}"
    return f"{pretty} ({kernel})" if pretty else kernel


def machine_name(machine: dict[str, Any]) -> str:
    """"AMD EPYC [avx512-vnni]": the CPU as reports name it (the tier only where it was recorded)."""
    cpu, isa = machine.get("cpu") or "unknown CPU", machine.get("isa")
    return f"{cpu} [{isa}]" if isa else str(cpu)


def describe_machine() -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "isa": cpu_isa(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": _memory_gib(),
        "os": os_name(),
        "python": platform.python_version(),
        "load_average": load,  # other work on the machine skews latency: keep it next to the figures
    }


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the edgemri checkout (with "-dirty" if modified), or None outside git."""
    cwd = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=cwd, capture_output=True, text=True,
                             timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
