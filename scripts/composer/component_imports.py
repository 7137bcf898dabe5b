"""Which Airflow component failed to import which module, from what the components themselves report:
the DAG processor's import errors and the API server's plugin import errors (REST API), and the lines the
triggerers and the scheduler (with its LocalExecutor workers) write to their logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(?P<name>\w+)' from '(?P<module>[\w.]+)'")
#: airflow/jobs/triggerer_job_runner.py (3.3.1), create_triggers: "Trigger failed to load code" with the
#: classpath of the trigger it could not import.
_TRIGGER_LOAD = re.compile(
    r"Trigger failed to load code.*?classpath[\"']?\s*[=:]\s*[\"']?(?P<classpath>[\w.]+)"
)


@dataclass(frozen=True)
class ImportFailure:
    component: str  # dag-processor, api-server, scheduler, triggerer-1, ...
    module: str
    evidence: str
    where: str

    def __str__(self) -> str:
        return f"{self.component} cannot import {self.module}: {self.evidence} ({self.where})"


def _module(text: str) -> str | None:
    match = _NO_MODULE.search(text) or _CANNOT_IMPORT.search(text)
    return match["module"] if match else None


#: Modules whose failed import in a log is ours to report: Airflow and its providers log optional imports
#: they do without (a provider's extra feature), which are not failures of this deployment.
OURS = ("aria_tuning",)


def _ours(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in OURS)


def from_log(component: str, log: Path) -> list[ImportFailure]:
    """Failures to import our modules in one component's log: a trigger class it could not load, or an
    import of aria_tuning that raised."""
    if not log.exists():
        return []
    found: dict[str, ImportFailure] = {}
    for line in log.read_text(errors="replace").splitlines():
        trigger = _TRIGGER_LOAD.search(line)
        if trigger:
            module = trigger["classpath"].rsplit(".", 1)[0]
            found.setdefault(module, ImportFailure(component, module, _short(line), str(log)))
            continue
        module = _module(line)
        if module and _ours(module) and not any(_ours(m) and m.startswith(module) for m in found):
            found.setdefault(module, ImportFailure(component, module, _short(line), str(log)))
    return list(found.values())


def from_dag_import_errors(errors: Iterable[Mapping[str, Any]]) -> list[ImportFailure]:
    """`GET /api/v2/importErrors`: the DAG files the DAG processor could not import."""
    failures = []
    for error in errors:
        trace = str(error.get("stack_trace", ""))
        module = _module(trace) or "(see stack trace)"
        last = next((line for line in reversed(trace.strip().splitlines()) if line.strip()), trace)
        failures.append(
            ImportFailure(
                "dag-processor",
                module,
                f"{error.get('filename')}: {last.strip()}",
                "GET /api/v2/importErrors",
            )
        )
    return failures


def from_plugin_import_errors(errors: Iterable[Mapping[str, Any]]) -> list[ImportFailure]:
    """`GET /api/v2/plugins/importErrors`: plugin files the API server could not import."""
    return [
        ImportFailure(
            "api-server",
            _module(str(e.get("error", ""))) or "(see error)",
            f"{e.get('source')}: {e.get('error')}",
            "GET /api/v2/plugins/importErrors",
        )
        for e in errors
    ]


def _short(line: str, limit: int = 300) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ComponentImportError(AssertionError):
    """Some component cannot import what it needs; the message names each component and module."""

    def __init__(self, failures: list[ImportFailure]):
        super().__init__(
            f"{len(failures)} import failure(s) in the Composer twin:\n"
            + "\n".join(f"  - {f}" for f in failures)
        )
        self.failures = failures
