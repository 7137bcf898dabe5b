"""Traffic-split arithmetic of an endpoint: canary shares, rescaling, and which deployed model is whose.

Pure functions over plain values (and endpoint-shaped objects), no Airflow and no Google import.
"""

from __future__ import annotations

from typing import Any

from aria_tuning.errors import ConfigurationError


def percentage(value: object, name: str = "traffic_percentage") -> int:
    """A whole percentage in 1..100, or ConfigurationError naming `name`."""
    try:
        percent = int(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be 1..100, got {value!r}") from exc
    if not 1 <= percent <= 100:
        raise ConfigurationError(f"{name} must be 1..100, got {percent}")
    return percent


def canary_split(current: dict[str, int], percent: int) -> dict[str, int]:
    """Traffic for a DeployModel request: "0" (the new model) gets `percent`, the rest keep their shares.

    With nothing else serving, the new model takes everything (Vertex wants a total of 100).
    """
    others = {k: v for k, v in current.items() if v > 0}
    if percent >= 100 or not others:
        return {"0": 100}
    return {"0": percent, **scaled_split(others, 100 - percent)}


def scaled_split(shares: dict[str, int], total: int) -> dict[str, int]:
    """`shares` (positive) scaled to whole percentages adding up to exactly `total`."""
    current = sum(shares.values())
    split = {k: total * v // current for k, v in shares.items()}
    split[next(iter(split))] += total - sum(split.values())  # rounding leftovers
    return split


def find_deployed(endpoint: Any, model_version: str) -> str | None:
    """The deployed model id serving `projects/.../models/ID@VERSION` on `endpoint`, if any."""
    model, version = model_version.split("@", 1)
    for deployed in endpoint.deployed_models:
        if deployed.model.split("@", 1)[0] == model and (deployed.model_version_id or version) == version:
            return str(deployed.id)
    return None


def split_without(endpoint: Any, removed: str, keep: str | None) -> dict[str, int]:
    """Traffic once `removed` serves nothing: all to `keep` if given, else the others rescaled."""
    if keep and keep != removed:
        return {keep: 100}
    others = {k: v for k, v in dict(endpoint.traffic_split).items() if k != removed and v > 0}
    return scaled_split(others, 100) if others else {}
