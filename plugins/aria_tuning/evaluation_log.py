"""The quality gate's evaluation as lines of its task log: each prompt's score, the means, the decision.

Plain readable text, one fact per line: no dict or quoted value, which the Airflow UI's log view would
turn into a link running into the closing quote. Pure functions over the gate's report; no Airflow import.
"""

from __future__ import annotations

from typing import Any

#: Characters of each prompt shown in its line (the report keeps the prompt whole).
PROMPT_CHARS = 60


def log_lines(report: dict[str, Any]) -> list[str]:
    """One line per prompt (the primary metric), one with every metric's means, one with the rule."""
    return [*prompt_lines(report), means_line(report), rule_line(report)]


def prompt_lines(report: dict[str, Any]) -> list[str]:
    """`prompt 3/50 (line 3): rouge_l candidate 0.973, champion 0.120 | ¿Dónde está mi pedido…`."""
    primary = report["rule"]["primary"]
    rows = report["prompts"]
    lines = []
    for index, row in enumerate(rows, start=1):
        mine, theirs = row["scores"]["candidate"][primary], row["scores"]["champion"][primary]
        # The prompt goes last: whatever it holds (a URL, quotes) cannot run into the scores.
        lines.append(
            f"prompt {index}/{len(rows)} (line {row['line']}): {primary} candidate {mine:.3f}, "
            f"champion {theirs:.3f} | {short(row['prompt'])}"
        )
    return lines


def means_line(report: dict[str, Any]) -> str:
    """`mean over 50 prompts: exact_match candidate 0.880, champion 0.000; bleu ...`."""
    mine, theirs = report["candidate"]["aggregates"], report["champion"]["aggregates"]
    names = report["rule"]["metrics"]
    scores = "; ".join(f"{name} candidate {mine[name]:.3f}, champion {theirs[name]:.3f}" for name in names)
    return f"mean over {report['count']} prompts: {scores}"


def rule_line(report: dict[str, Any]) -> str:
    """The primary metric's means against the champion less the tolerance and the floor, and the verdict."""
    rule, decision = report["rule"], report["decision"]
    mine, theirs = decision["candidate"], decision["champion"]
    least = theirs - rule["tolerance"]
    verdict = "PROMOTE" if decision["passed"] else "REFUSE: " + "; ".join(decision["reasons"])
    return (
        f"rule on {rule['primary']}: candidate {mine:.3f} against champion {theirs:.3f} - tolerance "
        f"{rule['tolerance']:.3f} = {least:.3f} ({_held(mine >= least)}) and the floor {rule['floor']:.3f} "
        f"({_held(mine >= rule['floor'])}). {verdict}"
    )


def short(text: str) -> str:
    """`text` on one line, at most PROMPT_CHARS characters (an ellipsis marks a cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= PROMPT_CHARS else flat[: PROMPT_CHARS - 1].rstrip() + "…"


def _held(ok: bool) -> str:
    return "met" if ok else "NOT met"
