"""The quality gate against the Vertex emulator: a good model is promoted, a bad one serves nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aria_tuning.errors import QualityGateFailed
from aria_tuning.hooks import VertexHook
from aria_tuning.operators.quality import QualityGateOperator
from aria_tuning.resources import resource_region

from tests.aria_tuning.conftest import Emulator, new_ti, run_direct, tuning_operator
from tests.aria_tuning.operators.test_registry_deploy import deploy, endpoint_state

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")


def versioned(model: str) -> str:
    return model if "@" in model else f"{model}@1"


def gate(deployed: dict[str, Any], eval_uri: str, base_model: str, threshold: float = 0.8) -> Any:
    operator = QualityGateOperator(
        task_id="quality_gate",
        endpoint=deployed["endpoint"],
        model_version=deployed["model_version"],
        eval_data_uri=eval_uri,
        base_model=base_model,
        threshold=threshold,
        max_prompts=4,
    )
    return run_direct(operator, new_ti("quality_gate"))


def aliases(version: str) -> list[str]:
    return list(
        VertexHook().client("model", resource_region(version)).get_model(name=version).version_aliases
    )


@pytest.mark.parametrize(
    ("model", "eval_key"), [("text-bison@001", "palm_eval"), ("gemini-2.5-flash", "gemini_eval")]
)
def test_a_good_model_is_promoted(vertex: str, datasets: dict[str, str], model: str, eval_key: str) -> None:
    tuned = run_direct(tuning_operator(datasets, model), new_ti())
    deployed = deploy(
        versioned(tuned["tuned_model"]), f"ARIA-ep-{uuid.uuid4().hex[:6]}", traffic_percentage=10
    )
    report = gate(deployed, datasets[eval_key], model)
    assert report["passed"] and report["score"] == 1.0 and report["count"] == 4
    assert report["samples"][0]["answer"] == report["samples"][0]["expected"]
    assert "production" in aliases(deployed["model_version"])
    assert dict(endpoint_state(deployed["endpoint"]).traffic_split) == {deployed["deployed_model_id"]: 100}


def test_the_gate_blocks_a_bad_model_and_it_serves_nothing(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    tuned = run_direct(tuning_operator(datasets, training_data_uri=datasets["palm_wrong"]), new_ti())
    deployed = deploy(versioned(tuned["tuned_model"]), f"ARIA-ep-{uuid.uuid4().hex[:6]}")
    assert dict(endpoint_state(deployed["endpoint"]).traffic_split) == {deployed["deployed_model_id"]: 100}
    with pytest.raises(QualityGateFailed) as failed:
        gate(deployed, datasets["palm_eval"], "text-bison@001")
    message = str(failed.value)
    assert (
        deployed["model_version"] in message
        and deployed["endpoint"] in message
        and "below the threshold" in message
    )
    assert "production" not in aliases(deployed["model_version"])
    after = endpoint_state(deployed["endpoint"])
    assert dict(after.traffic_split) == {}
    assert [d.id for d in after.deployed_models] == []  # undeployed: no node-hours billed for it


def test_a_failed_candidate_hands_traffic_back_to_production(vertex: str, datasets: dict[str, str]) -> None:
    from tests.aria_tuning.operators.test_registry_deploy import register

    parent, endpoint = f"ARIA-text-{uuid.uuid4().hex[:6]}", f"ARIA-ep-{uuid.uuid4().hex[:6]}"
    good = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    production = deploy(good["model_version"], endpoint)
    assert gate(production, datasets["palm_eval"], "text-bison@001")["passed"]

    bad = register(
        run_direct(tuning_operator(datasets, training_data_uri=datasets["palm_wrong"]), new_ti()), parent
    )
    candidate = deploy(bad["model_version"], endpoint, traffic_percentage=100)
    assert candidate["traffic_split"] == {candidate["deployed_model_id"]: 100}  # production: deployed, 0%
    with pytest.raises(QualityGateFailed):
        gate(candidate, datasets["palm_eval"], "text-bison@001")

    after = endpoint_state(candidate["endpoint"])
    assert dict(after.traffic_split) == {production["deployed_model_id"]: 100}
    assert [d.id for d in after.deployed_models] == [production["deployed_model_id"]]
    assert "production" in aliases(good["model_version"]) and "production" not in aliases(
        bad["model_version"]
    )
    assert "candidate" in aliases(bad["model_version"])
