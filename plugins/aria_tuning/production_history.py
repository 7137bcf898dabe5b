"""Which version "previous production" means: the one in production before the latest promotion.

A rollout labels the version it promotes with when (`aria-promoted-at`, Unix milliseconds), once; a
rollback labels the version it takes production from (`aria-rolled-back-at`). "Previous production"
undoes the latest promotion: the newest version promoted before it and never rolled back. Asked again
after the rollback it names the same version, so a rollback run twice changes nothing the second time.
Pure functions, no Airflow and no Google import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

LABEL_PROMOTED_AT = "aria-promoted-at"
LABEL_ROLLED_BACK_AT = "aria-rolled-back-at"
PREVIOUS = "previous production"


def previous_production(versions: Iterable[tuple[str, Mapping[str, str]]]) -> str | None:
    """The version id "previous production" names among (version id, labels), or None."""
    promoted = sorted(
        (int(labels[LABEL_PROMOTED_AT]), _number(version), version, LABEL_ROLLED_BACK_AT in labels)
        for version, labels in versions
        if str(labels.get(LABEL_PROMOTED_AT, "")).isdigit()
    )
    if len(promoted) < 2:
        return None
    latest = promoted[-1][0]
    earlier = [version for at, _, version, rolled_back in promoted if at < latest and not rolled_back]
    return earlier[-1] if earlier else None


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1
