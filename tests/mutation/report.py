"""bench/MUTATION.md from mutmut's verdicts: a score per module, then every surviving mutant with its
diff, or the reason it is equivalent (tests/mutation/equivalent.py).

The file also carries the verdicts as JSON in an HTML comment, so a run of some modules
(`make mutation MODULES=traffic`) rewrites their sections and keeps the others'.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The issue's target: at least 90% of the mutants that are not equivalent are killed, per module.
TARGET = 0.90

# mutmut's exit-code meanings (mutmut/stats.py `status_by_exit_code`): a kill is a failing test run
# (1; 3, an internal pytest error; 36/-24/24/152/255, a timeout; 37, the type checker).
_KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
_DATA = re.compile(r"<!-- mutation-data: (.*?) -->", re.S)


def status(code: int | None) -> str:
    if code in _KILLED:
        return "killed"
    return {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}.get(
        code, "suspicious"
    )


@dataclass
class ModuleResult:
    name: str
    source: str
    what: str
    tests: Sequence[str]
    verdicts: dict[str, int | None]
    diffs: dict[str, str] = field(default_factory=dict)

    def killed(self) -> int:
        return sum(status(code) == "killed" for code in self.verdicts.values())

    def survivors(self) -> list[str]:
        return sorted(name for name, code in self.verdicts.items() if status(code) != "killed")

    def score(self, equivalent: Mapping[str, str]) -> float:
        """Killed over the checked mutants that could be killed (survivors shown equivalent left out;
        mutants a stopped run never got to are not counted)."""
        checked = {name for name, code in self.verdicts.items() if code is not None}
        killable = len(checked) - sum(name in equivalent for name in self.survivors() if name in checked)
        return self.killed() / killable if killable else 1.0


def one_line(result: ModuleResult, seconds: float) -> str:
    return (
        f"{result.name}: {result.killed()}/{len(result.verdicts)} killed, "
        f"{len(result.survivors())} surviving, {seconds:.0f} s"
    )


def read_modules(path: Path) -> dict[str, ModuleResult]:
    """The modules an earlier report holds (empty when there is none)."""
    if not path.exists():
        return {}
    found = _DATA.search(path.read_text())
    if not found:
        return {}
    return {name: ModuleResult(**data) for name, data in json.loads(found.group(1)).items()}


def render(
    fresh: Sequence[ModuleResult],
    timings: Mapping[str, float],
    equivalent: Mapping[str, str],
    previous: Mapping[str, ModuleResult] | None = None,
    retest: bool = False,
    rebuilt: bool = False,
) -> str:
    modules = {**(previous or {}), **{r.name: r for r in fresh}}
    ran = ", ".join(f"{r.name} ({timings[r.name]:.0f} s)" for r in fresh)
    if retest:
        ran += " (--retest: the earlier run's survivors only, against the current tests)"
    if rebuilt:
        ran = "none (--report-only: rebuilt from the verdicts the last runs left in .run/mutation/)"
    unchecked = {r.name: sum(code is None for code in r.verdicts.values()) for r in modules.values()}
    lines = [
        "# Mutation testing",
        "",
        "Written by `make mutation` (tests/mutation/run.py: mutmut 3, each module against its own fast",
        "tests, on a copy of the tree in .run/mutation/). Target: at least "
        f"{TARGET:.0%} of the mutants that are not equivalent killed, per module.",
        f"Last run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {ran}.",
        "",
        "| module | what it decides | mutants | killed | survived | equivalent | not checked | score |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in modules.values():
        survivors = [name for name in r.survivors() if r.verdicts[name] is not None]
        same = sum(name in equivalent for name in survivors)
        mark = "" if r.score(equivalent) >= TARGET else " (below target)"
        lines.append(
            f"| `{r.source}` | {r.what} | {len(r.verdicts)} | {r.killed()} | {len(survivors) - same} "
            f"| {same} | {unchecked[r.name]} | {r.score(equivalent):.1%}{mark} |"
        )
    for r in modules.values():
        lines += ["", f"## {r.source}", "", "Tests: " + ", ".join(f"`{t}`" for t in r.tests) + "."]
        survivors = [name for name in r.survivors() if r.verdicts[name] is not None]
        if unchecked[r.name]:
            lines += [
                "",
                f"{unchecked[r.name]} mutants not checked: the run was stopped before it got to them.",
            ]
        if not survivors:
            lines += ["", "Every checked mutant killed."]
            continue
        for name in survivors:
            code = r.verdicts[name]
            why = equivalent.get(name)
            head = f"equivalent: {why}" if why else f"**{status(code)}**: not yet killed by a test"
            lines += ["", f"### `{name}`", "", head, "", "```diff", r.diffs.get(name, "(no diff)"), "```"]
    payload = json.dumps({name: asdict(r) for name, r in modules.items()}, sort_keys=True)
    lines += ["", f"<!-- mutation-data: {payload} -->", ""]
    return "\n".join(lines)
