"""`make mutation`: mutmut on the code whose mistakes cost money or data, each module against its own
fast tests; writes bench/MUTATION.md (the score per module, every survivor with its diff or the
reason it is equivalent).

mutmut 3 copies the source tree into `mutants/` and imports the package from there, naming modules
after their path (a leading `src/` dropped). Our package lives in plugins/aria_tuning and the tests
import it as `aria_tuning` (an editable install), so each module gets a staging directory,
.run/mutation/<name>/, holding `src/aria_tuning` (a copy of plugins/aria_tuning), tests/, scripts/ and
a pyproject.toml whose [tool.mutmut] mutates that one module and selects its tests. Modules whose
tests need the Vertex emulator share one pair of emulators started here, once (the test session
starts none when ARIA_TEST_RUNNING_EMULATORS names them).

    python -m tests.mutation.run [--modules vertex_jobs,traffic] [--max-children 2] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.mutation import report
from tests.mutation.equivalent import EQUIVALENT

REPO = Path(__file__).resolve().parents[2]
STAGES = REPO / ".run" / "mutation"
REPORT = REPO / "bench" / "MUTATION.md"


@dataclass(frozen=True)
class Target:
    """One module under mutation: its file under plugins/, its fast tests, and which mutants count."""

    name: str
    source: str  # e.g. "aria_tuning/vertex_jobs.py"
    tests: tuple[str, ...]
    what: str  # the report's one-line description of what the module decides
    emulators: bool = False  # its tests need the GCS and Vertex emulators
    #: mutmut name patterns (fnmatch) of the mutants to run; empty: every mutant of the module.
    mutants: tuple[str, ...] = ()
    #: Further pytest arguments selecting among `tests` (e.g. `-k`).
    select: tuple[str, ...] = ()


TARGETS = (
    Target(
        "vertex_jobs",
        "aria_tuning/vertex_jobs.py",
        ("tests/aria_tuning/test_vertex_jobs.py",),
        "re-attach or resubmit, request validation, job bodies, states",
    ),
    Target(
        "traffic",
        "aria_tuning/traffic.py",
        ("tests/aria_tuning/test_traffic_properties.py", "tests/aria_tuning/operators/test_deploy_split.py"),
        "canary and rescaled traffic splits, which deployed model is whose",
    ),
    Target(
        "validate",
        "aria_tuning/dataprep/validate.py",
        (
            "tests/aria_tuning/dataprep/test_validate.py",
            "tests/aria_tuning/dataprep/test_corpus.py",
            "tests/aria_tuning/dataprep/test_palm_blocks.py",
            "tests/aria_tuning/dataprep/test_prepare.py",
            "tests/aria_tuning/dataprep/test_split.py",
            "tests/aria_tuning/dataprep/test_tokens.py",
            # GCS sources, read through the caller's client:
            "tests/aria_tuning/dataprep/test_gcs.py::test_every_gcs_call_goes_through_the_client_passed_in",
            "tests/aria_tuning/dataprep/test_gcs.py::test_problems_name_the_gs_uri_and_line",
            "tests/aria_tuning/dataprep/test_gcs.py::test_prefix_source_reads_every_object",
        ),
        "dataset validation: every bad line named, limits, duplicates",
        emulators=True,
    ),
    Target(
        "split_rule",
        "aria_tuning/dataprep/split_rule.py",
        ("tests/aria_tuning/dataprep/test_split.py", "tests/aria_tuning/dataprep/test_split_properties.py"),
        "which examples go to eval, and how many",
    ),
    Target(
        "triggers",
        "aria_tuning/triggers.py",
        (
            "tests/aria_tuning/test_trigger_retries.py",
            "tests/aria_tuning/test_trigger_schedule.py",
            "tests/aria_tuning/test_trigger_progress.py",
            "tests/aria_tuning/test_trigger_task_state.py",
            "tests/aria_tuning/test_triggers.py",
            "tests/aria_tuning/test_trigger_cancellation.py",
            "tests/aria_tuning/test_operation_trigger.py",
        ),
        "waiting on jobs and operations: states, transient errors, cancellation",
        emulators=True,
        # Over REST only: the trigger's logic does not depend on the transport (its hook hides it), and
        # the suite runs every one of these tests over gRPC too. The two 503 tests spend most of their
        # 6 s in the client's own backoff; test_trigger_retries.py counts the same budget in milliseconds.
        select=(
            "-k",
            "not grpc",
            "--deselect",
            "tests/aria_tuning/test_triggers.py::test_transient_503s_are_ridden_out",
            "--deselect",
            "tests/aria_tuning/test_triggers.py::test_transient_error_budget_is_bounded",
        ),
    ),
    Target(
        "alias",
        "aria_tuning/hooks/models.py",
        (
            "tests/aria_tuning/test_model_aliases.py",
            "tests/aria_tuning/operators/test_registry_deploy.py::"
            "test_an_alias_nobody_holds_is_none_and_other_errors_name_the_model",
        ),
        "the alias logic (move_alias, version_with_alias) of the Model Registry hook",
        emulators=True,
        mutants=("*move_alias__mutmut_*", "*version_with_alias__mutmut_*"),
        select=("-k", "not grpc"),
    ),
)


def _pyproject(target: Target) -> str:
    """The staging directory's pyproject.toml: mutmut's settings and the pytest options it runs with."""
    mutmut = {
        "source_paths": ["src/aria_tuning"],
        "only_mutate": [f"src/{target.source}"],
        "also_copy": ["scripts"],
        "pytest_add_cli_args_test_selection": [*target.tests, *target.select],
        # gRPC is not fork-safe once a channel exists: fork every mutant from a server that ran no test.
        "process_isolation": "forkserver",
    }
    lines = ["[tool.mutmut]", *(f"{key} = {json.dumps(value)}" for key, value in mutmut.items())]
    lines += [
        "",
        "[tool.pytest.ini_options]",
        'testpaths = ["tests"]',
        'addopts = "-p no:randomly -p no:cacheprovider"',
        "timeout = 600",
        'markers = ["slow: long end-to-end scenarios", "faults: fault-injection scenarios"]',
        'filterwarnings = ["ignore::DeprecationWarning"]',
    ]
    return "\n".join(lines) + "\n"


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")


def stage(target: Target) -> Path:
    """A fresh staging directory for `target` (see the module docstring)."""
    root = STAGES / target.name
    shutil.rmtree(root, ignore_errors=True)
    (root / "src").mkdir(parents=True)
    shutil.copytree(REPO / "plugins" / "aria_tuning", root / "src" / "aria_tuning", ignore=_IGNORE)
    for folder in ("tests", "scripts"):
        shutil.copytree(REPO / folder, root / folder, ignore=_IGNORE)
    (root / "pyproject.toml").write_text(_pyproject(target))
    return root


@contextmanager
def running_emulators(log_dir: Path) -> Iterator[dict[str, Any]]:
    """A GCS and a Vertex emulator (gRPC too) for every emulator-backed module; stopped at the end."""
    from scripts.emulators import start_gcs_emulator, start_vertex_emulator
    from tests.support.servers import start_on_free_ports

    gcs = start_gcs_emulator(log_dir)
    try:
        vertex, (grpc_port,) = start_on_free_ports(
            lambda ports: start_vertex_emulator(log_dir, gcs_url=gcs.url, grpc_port=ports[0]), count=1
        )
        try:
            yield {"gcs": gcs.url, "vertex": vertex.url, "vertex_grpc_port": grpc_port}
        finally:
            vertex.stop()
    finally:
        gcs.stop()


def restage_tests(target: Target, root: Path) -> None:
    """The repository's current tests (and scripts, and test selection) in an existing staging
    directory (`--retest`)."""
    for folder in ("tests", "scripts"):
        shutil.copytree(REPO / folder, root / folder, ignore=_IGNORE, dirs_exist_ok=True)
    (root / "pyproject.toml").write_text(_pyproject(target))


def survivors(target: Target, root: Path) -> list[str]:
    """The mutants of an earlier run of `target` that no test killed."""
    from fnmatch import fnmatch

    meta = json.loads((root / "mutants" / "src" / f"{target.source}.meta").read_text())
    return [
        name
        for name, code in meta["exit_code_by_key"].items()
        if report.status(code) != "killed"
        and (not target.mutants or any(fnmatch(name, pattern) for pattern in target.mutants))
    ]


def mutate(
    target: Target, root: Path, env: dict[str, str], max_children: int, names: Sequence[str] = ()
) -> float:
    """`mutmut run` in the staging directory (only `names`, when given); returns its wall time. Its
    output goes to mutmut.log."""
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with (root / "mutmut.log").open("wb") as log:
        done = subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children), *(names or target.mutants)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = (root / "mutmut.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"mutmut failed on {target.source} (exit {done.returncode}); {root}/mutmut.log:\n{tail}"
        )
    return time.monotonic() - started


def results(target: Target, root: Path, env: dict[str, str]) -> report.ModuleResult:
    """Every mutant's verdict (from mutmut's meta file) and each survivor's diff (`mutmut show`)."""
    from fnmatch import fnmatch

    meta = json.loads((root / "mutants" / "src" / f"{target.source}.meta").read_text())
    verdicts = {
        name: code
        for name, code in meta["exit_code_by_key"].items()
        if not target.mutants or any(fnmatch(name, pattern) for pattern in target.mutants)
    }
    survivors = [name for name, code in verdicts.items() if report.status(code) != "killed"]
    shown = subprocess.run(
        [sys.executable, "-m", "tests.mutation.diffs"],
        cwd=root,
        env=env,
        input="\n".join(survivors),
        capture_output=True,
        text=True,
        check=True,
    )
    diffs = json.loads(shown.stdout.strip().splitlines()[-1]) if survivors else {}
    return report.ModuleResult(target.name, target.source, target.what, target.tests, verdicts, diffs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules",
        default="",
        help="comma-separated names (default: all): " + ", ".join(t.name for t in TARGETS),
    )
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once (2 cores here)")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--retest",
        action="store_true",
        help="re-run only the last run's survivors, against the current tests",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write the report from the staging directories",
    )
    args = parser.parse_args(argv)
    wanted = {name for name in args.modules.split(",") if name}
    unknown = wanted - {t.name for t in TARGETS}
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}")
    targets = [t for t in TARGETS if not wanted or t.name in wanted]

    from tests.support import airflow as airflow_support

    STAGES.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    home = STAGES / f"airflow-home-{os.getpid()}"  # this run's own: runs of other modules may overlap
    home.mkdir()
    saved = dict(os.environ)
    airflow_support.configure_environment(home)  # every mutant's session shares one migrated database
    env.update(os.environ)
    os.environ.clear()
    os.environ.update(saved)
    env["HYPOTHESIS_PROFILE"] = "mutation"  # the same examples every run (tests/conftest.py)

    finished: list[report.ModuleResult] = []
    timings: dict[str, float] = {}
    plain = [t for t in targets if not t.emulators]
    backed = [t for t in targets if t.emulators]

    def run(target: Target, children: int) -> None:
        if args.report_only:
            timings[target.name] = 0.0
            finished.append(results(target, STAGES / target.name, env))
            return
        if args.retest:
            root = STAGES / target.name
            restage_tests(target, root)
            names = survivors(target, root)
            timings[target.name] = mutate(target, root, env, children, names) if names else 0.0
        else:
            root = stage(target)
            timings[target.name] = mutate(target, root, env, children)
        finished.append(results(target, root, env))
        print(report.one_line(finished[-1], timings[target.name]), flush=True)

    for target in plain:
        run(target, args.max_children)
    if backed and args.report_only:
        for target in backed:
            run(target, 1)
    elif backed:
        with running_emulators(STAGES) as emulators:
            env["ARIA_TEST_RUNNING_EMULATORS"] = json.dumps(emulators)
            for target in backed:
                run(target, 1)  # one mutant at a time on the one emulator

    shutil.rmtree(home, ignore_errors=True)
    previous = report.read_modules(args.report) if wanted else {}
    args.report.write_text(
        report.render(finished, timings, EQUIVALENT, previous, retest=args.retest, rebuilt=args.report_only)
    )
    print(f"wrote {args.report}")
    return 0 if all(r.score(EQUIVALENT) >= report.TARGET for r in finished) else 1


if __name__ == "__main__":
    sys.exit(main())
