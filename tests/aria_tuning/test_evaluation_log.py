"""The quality gate's log lines: each prompt's primary score, the means, the rule; plain text only."""

from __future__ import annotations

from typing import Any

import pytest
from aria_tuning import promotion
from aria_tuning.evaluation_log import PROMPT_CHARS, log_lines, short


def report(candidate: list[float], champion: list[float], prompts: list[str]) -> dict[str, Any]:
    """A gate report as QualityGateOperator builds it, with rouge_l the primary and bleu a second metric."""
    rule = promotion.rule(["bleu", "rouge_l"], "rouge_l", 0.02, 0.85)
    means = {
        "candidate": {"bleu": 0.5, "rouge_l": promotion.mean(candidate)},
        "champion": {"bleu": 0.25, "rouge_l": promotion.mean(champion)},
    }
    decision = promotion.decide(means["candidate"], means["champion"], rule)
    return {
        "decision": {
            "passed": decision.passed,
            "primary": rule.primary,
            "candidate": decision.candidate,
            "champion": decision.champion,
            "reasons": list(decision.reasons),
        },
        "rule": rule.to_dict(),
        "candidate": {"aggregates": means["candidate"]},
        "champion": {"aggregates": means["champion"]},
        "count": len(prompts),
        "prompts": [
            {
                "line": 10 + i,
                "prompt": prompt,
                "scores": {
                    "candidate": {"bleu": 0.5, "rouge_l": candidate[i]},
                    "champion": {"bleu": 0.25, "rouge_l": champion[i]},
                },
            }
            for i, prompt in enumerate(prompts)
        ],
    }


def test_one_line_per_prompt_with_both_primary_scores_then_the_means_and_the_rule() -> None:
    lines = log_lines(report([1.0, 0.9], [0.125, 0.5], ["¿Dónde está\nmi pedido?", "Quiero cancelar"]))
    assert lines == [
        "prompt 1/2 (line 10): rouge_l candidate 1.000, champion 0.125 | ¿Dónde está mi pedido?",
        "prompt 2/2 (line 11): rouge_l candidate 0.900, champion 0.500 | Quiero cancelar",
        "mean over 2 prompts: bleu candidate 0.500, champion 0.250; rouge_l candidate 0.950, champion 0.312",
        "rule on rouge_l: candidate 0.950 against champion 0.312 - tolerance 0.020 = 0.292 (met) and the "
        "floor 0.850 (met). PROMOTE",
    ]


def test_a_refusal_names_the_unmet_bounds_and_the_reasons() -> None:
    rule = log_lines(report([0.8, 0.8], [0.9, 0.9], ["a", "b"]))[-1]
    assert "= 0.880 (NOT met) and the floor 0.850 (NOT met). REFUSE: rouge_l 0.800 is below the floor" in rule
    assert "worse than the champion's 0.900 by more than the tolerance 0.020" in rule


def test_a_candidate_within_the_tolerance_meets_the_relative_bound() -> None:
    rule = log_lines(report([0.88], [0.9], ["a"]))[-1]
    assert "= 0.880 (met)" in rule and rule.endswith("PROMOTE")


@pytest.mark.parametrize(
    "prompt",
    [
        "Mi factura https://example.com/factura?id=1 está mal, " + "x" * 80,
        "{'customer': 'Ana', 'order': 42} " * 5,
        'Dijo "gracias"\r\n\tpor todo ' * 10,
    ],
)
def test_a_long_prompt_is_cut_to_one_line_after_the_scores(prompt: str) -> None:
    [line] = log_lines(report([1.0], [0.0], [prompt]))[:1]
    head, _, excerpt = line.partition(" | ")
    assert head == "prompt 1/1 (line 10): rouge_l candidate 1.000, champion 0.000"
    assert excerpt == short(prompt) and len(excerpt) <= PROMPT_CHARS and excerpt.endswith("…")
    assert "\n" not in line and "\r" not in line and "\t" not in line
    assert " ".join(prompt.split()).startswith(excerpt[:-1])
