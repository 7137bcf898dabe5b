"""What every benchmark shares: repetitions and medians, fresh-interpreter runs, the machine, RESULTS.md."""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = ROOT / "bench" / "RESULTS.md"
PACKAGES = (
    "apache-airflow",
    "apache-airflow-providers-google",
    "google-cloud-aiplatform",
    "google-api-core",
    "google-auth",
    "aiohttp",
    "gcp-storage-emulator",
)


@dataclass
class Row:
    """One line of the results table: our figure against its baseline, measured in the same run."""

    benchmark: str
    ours: float | None
    baseline: float | None
    unit: str
    target: str
    met: bool | None
    note: str = ""
    #: None: decided by the unit (throughputs such as MB/s are better higher; times, sizes lower).
    higher_is_better: bool | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better ours is than the baseline (> 1: ours is better)."""
        if not self.ours or not self.baseline:
            return None
        higher = self.higher_is_better
        if higher is None:
            higher = self.unit.endswith("B/s")
        return self.ours / self.baseline if higher else self.baseline / self.ours


@dataclass
class Section:
    """A benchmark's rows plus the prose that explains how they were measured."""

    title: str
    rows: list[Row] = field(default_factory=list)
    text: str = ""


def importable(module: str) -> bool:
    """Whether `module` imports: a benchmark measures "ours" only once the component exists."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def run_fresh_python(code: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run `code` in a new interpreter of this venv; it must print one JSON object as its last line."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"fresh interpreter failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_driver(
    module: str,
    args: Sequence[str],
    work: Path,
    name: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> dict:
    """Run `python -m module args... --out FILE` in a fresh interpreter (output to `name`.log in `work`);
    returns the JSON object the driver wrote to FILE. `env`, when given, is its whole environment."""
    out, log = work / f"{name}.json", work / f"{name}.log"
    with log.open("wb") as sink:
        completed = subprocess.run(
            [sys.executable, "-m", module, *args, "--out", str(out)],
            cwd=ROOT,
            env=dict(env) if env is not None else None,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{module} ({name}) failed with {completed.returncode}:\n{tail}")
    return dict(json.loads(out.read_text()))


def machine_description() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    described = {
        "CPU": cpu,
        "Cores": str(os.cpu_count()),
        "RAM": ram,
        "Load average at start (1, 5, 15 min)": load,
        "OS": platform.platform(),
        "Python": platform.python_version(),
    }
    for package in PACKAGES:
        try:
            described[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            described[package] = "not installed"
    return described


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _met(row: Row) -> str:
    if row.note == "informative":
        return "n/a"
    if row.met is None:
        return "not measured"
    return "yes" if row.met else "**no**"


def render_results(sections: Sequence[Section], machine: dict[str, str], preamble: str = "") -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run_all`); do not edit by hand.",
        "",
    ]
    if preamble:
        lines += [preamble, ""]
    lines += [
        "| Benchmark | Ours | Baseline | Ours vs baseline (x better) | Target | Met? |",
        "|---|---|---|---|---|---|",
    ]
    for section in sections:
        for row in section.rows:
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "n/a"
            name = f"{row.benchmark}" + (f" ({row.note})" if row.note else "")
            lines.append(
                f"| {name} | {_fmt(row.ours, row.unit)} | {_fmt(row.baseline, row.unit)} | {ratio} "
                f"| {row.target} | {_met(row)} |"
            )
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    for section in sections:
        lines += ["", f"## {section.title}", "", section.text.strip()]
    return "\n".join(lines) + "\n"
