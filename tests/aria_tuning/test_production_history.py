"""'previous production': the version in production before the latest promotion, stable after a rollback."""

from __future__ import annotations

from aria_tuning.production_history import LABEL_PROMOTED_AT, LABEL_ROLLED_BACK_AT, previous_production


def promoted(at: int, rolled_back: bool = False) -> dict[str, str]:
    labels = {LABEL_PROMOTED_AT: str(at)}
    return {**labels, LABEL_ROLLED_BACK_AT: "9"} if rolled_back else labels


def test_the_version_promoted_before_the_latest_one() -> None:
    assert previous_production([("1", promoted(100)), ("2", promoted(200)), ("3", {})]) == "1"


def test_after_a_rollback_it_names_the_same_version_again() -> None:
    # 2 was rolled back to 1: undoing "the latest promotion" again still means 1.
    assert previous_production([("1", promoted(100)), ("2", promoted(200, rolled_back=True))]) == "1"


def test_a_rolled_back_version_is_never_the_one_restored() -> None:
    versions = [("1", promoted(100)), ("2", promoted(200, rolled_back=True)), ("3", promoted(300))]
    assert previous_production(versions) == "1"


def test_nothing_to_go_back_to() -> None:
    assert previous_production([("1", promoted(100)), ("2", {})]) is None
    assert previous_production([]) is None
