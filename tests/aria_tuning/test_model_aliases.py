"""Moving a version alias through the Model Registry hook against the Vertex emulator: one holder at
a time, no call when the version already holds it, and a refused call named by the version it was on."""

from __future__ import annotations

import uuid

import pytest
from aria_tuning.errors import VertexError
from aria_tuning.hooks.models import ModelRegistryHook
from google.api_core.exceptions import Forbidden

from tests.aria_tuning.conftest import Emulator

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")

LOCATION = "projects/aria-local/locations/us-central1"
MERGE = ":mergeVersionAliases"


def two_versions(registry: ModelRegistryHook) -> tuple[str, str, str]:
    """(model, its version 1, its version 2), uploaded without any tuning."""
    spec = {"display_name": f"aliases-{uuid.uuid4().hex[:6]}", "artifact_uri": "gs://aria-models/x"}
    first = registry.upload_version(LOCATION, spec, None, timeout=30)
    model = first.split("@", 1)[0]
    return model, first, registry.upload_version(LOCATION, spec, model, timeout=30)


def holders(registry: ModelRegistryHook, model: str, alias: str) -> list[str]:
    held = registry.version_with_alias(model, alias)
    return [] if held is None else [f"{model}@{held.version_id}"]


def test_an_alias_moves_to_one_version_and_staying_put_costs_no_call(vertex: str, emulator: Emulator) -> None:
    registry = ModelRegistryHook()
    model, v1, v2 = two_versions(registry)
    registry.move_alias(model, v1, "production")
    assert holders(registry, model, "production") == [v1]

    def merges() -> tuple[int, int]:
        return emulator.calls(f"{v1}{MERGE}", "POST"), emulator.calls(f"{v2}{MERGE}", "POST")

    before = merges()
    registry.move_alias(model, v1, "production")  # already there: nothing to do
    assert merges() == before

    registry.move_alias(model, v2, "production")
    assert holders(registry, model, "production") == [v2]
    assert "production" not in registry.get_model(v1).version_aliases
    assert merges() == (before[0] + 1, before[1] + 1)  # taken from v1, given to v2


def test_a_refused_removal_names_the_version_it_was_taken_from(vertex: str, emulator: Emulator) -> None:
    registry = ModelRegistryHook()
    model, v1, v2 = two_versions(registry)
    registry.move_alias(model, v1, "production")
    emulator.fault(status=403, rate=1.0, method="POST", path=f"{v1.rsplit('/', 1)[1]}{MERGE}$", count=1)
    with pytest.raises(VertexError, match="removing alias production") as refused:
        registry.move_alias(model, v2, "production")
    assert refused.value.resource == v1 and isinstance(refused.value.__cause__, Forbidden)
    assert holders(registry, model, "production") == [v1]  # nothing moved


def test_a_refused_add_names_the_version_it_was_for(vertex: str, emulator: Emulator) -> None:
    registry = ModelRegistryHook()
    model, _, v2 = two_versions(registry)
    emulator.fault(status=403, rate=1.0, method="POST", path=f"{v2.rsplit('/', 1)[1]}{MERGE}$", count=1)
    with pytest.raises(VertexError, match="adding alias candidate") as refused:
        registry.move_alias(model, v2, "candidate")
    assert refused.value.resource == v2 and isinstance(refused.value.__cause__, Forbidden)


def test_a_503_on_any_of_its_calls_is_retried(vertex: str, emulator: Emulator) -> None:
    registry = ModelRegistryHook()
    model, v1, v2 = two_versions(registry)
    registry.move_alias(model, v1, "production")
    # The look-up of the holder, the removal from v1, then the add to v2: each refused once.
    emulator.fault(status=503, rate=1.0, method="GET", path=f"{model.rsplit('/', 1)[1]}@production$", count=1)
    for version in (v1, v2):
        emulator.fault(
            status=503, rate=1.0, method="POST", path=f"{version.rsplit('/', 1)[1]}{MERGE}$", count=1
        )
    registry.move_alias(model, v2, "production")
    assert holders(registry, model, "production") == [v2]
    assert [rule["hits"] for rule in emulator.fault_rules()] == [1, 1, 1]
