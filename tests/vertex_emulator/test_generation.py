"""Generation settings on `generateContent` (GAPIC and google-genai) and PaLM `predict`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.vertex_emulator.conftest import (
    Gapic,
    GrpcApi,
    Upload,
    palm_rows,
    pipeline_job,
    terminal_pipeline,
    wait_for,
)
from tests.vertex_emulator.test_tuning import genai_client

GEMINI = "publishers/google/models/gemini-2.0-flash-001"
PROMPT = "tell me about the tuned model and its answers"  # a base model echoes: "[model] " + prompt


def generate(gapic: Gapic, parent: str, **config: Any) -> aiplatform_v1.GenerateContentResponse:
    return gapic.prediction.generate_content(
        request={
            "model": f"{parent}/{GEMINI}",
            "contents": [aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text=PROMPT)])],
            "generation_config": aiplatform_v1.GenerationConfig(**config),
        }
    )


def test_max_output_tokens_cuts_the_answer_and_reports_max_tokens(gapic: Gapic, gpu_parent: str) -> None:
    full = generate(gapic, gpu_parent, temperature=0.0)
    answer = full.candidates[0].content.parts[0].text
    assert full.candidates[0].finish_reason.name == "STOP"
    assert answer == f"[gemini-2.0-flash-001] {PROMPT}"

    cut = generate(gapic, gpu_parent, max_output_tokens=3)

    # Tokens are the emulator's estimate: four characters each (the count usageMetadata reports).
    assert cut.candidates[0].content.parts[0].text == answer[:12]
    assert cut.candidates[0].finish_reason.name == "MAX_TOKENS"
    assert cut.usage_metadata.candidates_token_count == 3
    roomy = generate(gapic, gpu_parent, max_output_tokens=1000)
    assert (roomy.candidates[0].content.parts[0].text, roomy.candidates[0].finish_reason.name) == (
        answer,
        "STOP",
    )


def test_stop_sequences_and_candidate_count(gapic: Gapic, gpu_parent: str) -> None:
    response = generate(gapic, gpu_parent, stop_sequences=["model"], candidate_count=2)
    assert [c.content.parts[0].text for c in response.candidates] == [
        "[gemini-2.0-flash-001] tell me about the tuned "
    ] * 2
    assert [c.index for c in response.candidates] == [0, 1]
    assert {c.finish_reason.name for c in response.candidates} == {"STOP"}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"temperature": 2.5}, "temperature value of 2.5"),
        ({"temperature": -0.1}, "temperature value of -0.1"),
        ({"top_p": 1.5}, "topP value of 1.5"),
        ({"top_k": 0.5}, "topK value of 0.5"),
        ({"candidate_count": 9}, "candidateCount value of 9"),
        ({"max_output_tokens": 100_000}, "maxOutputTokens value of 100000"),
    ],
)
def test_out_of_range_generation_settings_are_400(
    gapic: Gapic, gpu_parent: str, config: dict[str, Any], named: str
) -> None:
    with pytest.raises(exceptions.BadRequest, match=re.escape(named)):
        generate(gapic, gpu_parent, **config)


@pytest.mark.parametrize(
    "config", [{"temperature": 0.0}, {"temperature": 2.0}, {"top_p": 0.0, "top_k": 40.0}, {"top_p": 1.0}]
)
def test_in_range_generation_settings_are_accepted(
    gapic: Gapic, gpu_parent: str, config: dict[str, Any]
) -> None:
    assert generate(gapic, gpu_parent, **config).candidates[0].finish_reason.name == "STOP"


def test_google_genai_sees_max_tokens_and_range_errors(vertex_emulator: str, project: str) -> None:
    client = genai_client(vertex_emulator, project)
    cut = client.models.generate_content(
        model="gemini-2.0-flash-001",
        contents=PROMPT,
        config=genai_types.GenerateContentConfig(max_output_tokens=2, temperature=1.0),
    )
    assert cut.candidates and cut.candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS
    assert cut.text == "[gemini-"
    with pytest.raises(genai_errors.ClientError, match="temperature value of 3"):
        client.models.generate_content(
            model="gemini-2.0-flash-001",
            contents=PROMPT,
            config=genai_types.GenerateContentConfig(temperature=3),
        )


def test_palm_predict_honours_max_output_tokens_and_checks_ranges(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    rows = [{"input_text": "long question", "output_text": "a long answer of several words and more"}] * 10
    job = gapic.pipelines.create_pipeline_job(
        parent=gpu_parent,
        pipeline_job=pipeline_job(
            upload("t.jsonl", rows + palm_rows("p", 2)), location="us-central1", accelerator="GPU"
        ),
    )
    job = wait_for(
        lambda: gapic.pipelines.get_pipeline_job(name=job.name), lambda j: terminal_pipeline(j.state)
    )
    endpoint = job.job_detail.task_details[-1].execution.metadata["output:endpoint_resource_name"]

    def predict(**parameters: Any) -> str:
        response = gapic.prediction.predict(
            endpoint=endpoint, instances=[{"content": "long question"}], parameters=parameters
        )
        return str(response.predictions[0]["content"])

    assert predict(temperature=0.0) == "a long answer of several words and more"
    assert predict(maxOutputTokens=2, temperature=0.2) == "a long a"
    for parameters, named in (
        ({"temperature": 1.5}, "temperature value of 1.5"),  # PaLM: 0.0-1.0
        ({"topK": 41}, "topK value of 41"),
        ({"maxOutputTokens": 2048}, "maxOutputTokens value of 2048"),  # text-bison: 1-1024
        ({"maxOutputTokens": "many"}, "parameters.maxOutputTokens must be a number"),
    ):
        with pytest.raises(exceptions.BadRequest, match=re.escape(named)):
            predict(**parameters)


def test_generation_settings_over_grpc(grpc_api: GrpcApi, gpu_parent: str) -> None:
    request = {
        "model": f"{gpu_parent}/{GEMINI}",
        "contents": [aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text=PROMPT)])],
        "generation_config": aiplatform_v1.GenerationConfig(max_output_tokens=1),
    }
    cut = grpc_api.prediction.generate_content(request=request)
    assert (cut.candidates[0].content.parts[0].text, cut.candidates[0].finish_reason.name) == (
        "[gem",
        "MAX_TOKENS",
    )
    request["generation_config"] = aiplatform_v1.GenerationConfig(temperature=2.1)
    with pytest.raises(exceptions.InvalidArgument, match=re.escape("temperature value of 2.1")):
        grpc_api.prediction.generate_content(request=request)
