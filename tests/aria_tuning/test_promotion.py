"""The promotion rule: relative to the champion with a tolerance, and an absolute floor."""

from __future__ import annotations

import pytest
from aria_tuning import promotion
from aria_tuning.errors import ConfigurationError

RULE = promotion.rule(promotion.DEFAULT_METRICS, "rouge_l", 0.02, 0.85)


def test_a_candidate_better_than_the_champion_and_above_the_floor_passes() -> None:
    decision = promotion.decide({"rouge_l": 0.97}, {"rouge_l": 0.12}, RULE)
    assert decision.passed and decision.reasons == ()


def test_a_little_worse_than_the_champion_is_within_the_tolerance() -> None:
    assert promotion.decide({"rouge_l": 0.95}, {"rouge_l": 0.965}, RULE).passed


def test_worse_than_the_champion_beyond_the_tolerance_is_refused() -> None:
    decision = promotion.decide({"rouge_l": 0.90}, {"rouge_l": 0.97}, RULE)
    assert not decision.passed and "worse than the champion's 0.970" in decision.reasons[0]


def test_the_demos_wrong_answers_are_refused_by_the_default_floor_even_against_the_base_model() -> None:
    # ROUGE-L of the demo's earlier candidate: 5 of 19 prompts answered with another request's reply.
    decision = promotion.decide(
        {"rouge_l": 0.77},
        {"rouge_l": 0.10},
        promotion.rule("rouge_l", "rouge_l", 0.02, promotion.DEFAULT_FLOOR),
    )
    assert not decision.passed and decision.reasons == ("rouge_l 0.770 is below the floor 0.850",)


@pytest.mark.parametrize(
    ("metrics", "primary", "tolerance", "floor", "message"),
    [
        (["bleu", "cider"], "bleu", 0.02, 0.8, "unknown evaluation metrics"),
        (["bleu"], "rouge_l", 0.02, 0.8, "is not one of the metrics"),
        ([], "bleu", 0.02, 0.8, "at least one"),
        (["bleu"], "bleu", "x", 0.8, "must be numbers"),
        (["bleu"], "bleu", 0.02, 2, "within 0..1"),
    ],
)
def test_bad_rules_are_refused(
    metrics: object, primary: str, tolerance: object, floor: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        promotion.rule(metrics, primary, tolerance, floor)


def test_metrics_rendered_from_a_template_are_read_back() -> None:
    assert promotion.rule("['exact_match', 'rouge_l']", "rouge_l", "0.02", "0.85").metrics == (
        "exact_match",
        "rouge_l",
    )
