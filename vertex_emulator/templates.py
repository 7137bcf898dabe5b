"""Pipeline templates the emulator knows, with their real parameter names and types.

Only Google's `tune-large-model` (PaLM text-bison adapter tuning, v2.0.0) is known. Vertex
fetches a template from Artifact Registry by `templateUri`; the emulator looks it up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TUNE_LARGE_MODEL_URI = (
    "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
)


@dataclass(frozen=True)
class Parameter:
    type: str  # "STRING" | "NUMBER_INTEGER" | "NUMBER_DOUBLE" | "BOOLEAN" (KFP v2 parameter types)
    default: Any = None  # None: required

    def accepts(self, value: Any) -> bool:
        if self.type == "STRING":
            return isinstance(value, str)
        if self.type == "BOOLEAN":
            return isinstance(value, bool)
        if self.type == "NUMBER_INTEGER":
            return (
                isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
            )
        return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Template:
    uri: str
    name: str
    version: str
    parameters: dict[str, Parameter]
    #: Which accelerator runs in which region (the template's own validation).
    accelerator_regions: dict[str, str]
    base_models: tuple[str, ...]

    def pipeline_spec(self) -> dict[str, Any]:
        """The compiled spec Vertex stores on the job (only what clients look at)."""
        return {
            "pipelineInfo": {"name": self.name},
            "schemaVersion": "2.1.0",
            "sdkVersion": "kfp-2.0.0",
            "root": {
                "inputDefinitions": {
                    "parameters": {
                        name: {
                            "parameterType": p.type,
                            **({"isOptional": True} if p.default is not None else {}),
                        }
                        for name, p in self.parameters.items()
                    }
                }
            },
        }


# Parameter names and defaults as the Vertex AI SDK passes them to this template
# (vertexai.language_models._language_models: tune_model / _launch_tuning_job) and as the
# "Tune text models" REST samples list them.
TUNE_LARGE_MODEL = Template(
    uri=TUNE_LARGE_MODEL_URI,
    name="tune-large-model",
    version="v2.0.0",
    parameters={
        "project": Parameter("STRING"),
        "location": Parameter("STRING", ""),
        "large_model_reference": Parameter("STRING", "text-bison@001"),
        "model_display_name": Parameter("STRING", ""),
        "dataset_uri": Parameter("STRING"),
        "train_steps": Parameter("NUMBER_INTEGER", 300),
        "learning_rate": Parameter("NUMBER_DOUBLE", -1.0),
        "learning_rate_multiplier": Parameter("NUMBER_DOUBLE", 1.0),
        "evaluation_data_uri": Parameter("STRING", ""),
        "evaluation_interval": Parameter("NUMBER_INTEGER", 20),
        "evaluation_output_root_dir": Parameter("STRING", ""),
        "enable_early_stopping": Parameter("BOOLEAN", True),
        "enable_checkpoint_selection": Parameter("STRING", "default"),
        "tensorboard_resource_id": Parameter("STRING", ""),
        "accelerator_type": Parameter("STRING", ""),
        "tpu_training_skip_cmek": Parameter("BOOLEAN", False),
        "encryption_spec_key_name": Parameter("STRING", ""),
        "default_context": Parameter("STRING", ""),
        "max_context_length": Parameter("STRING", ""),
    },
    # Google's tuning docs: TPU v3 pods in europe-west4, 8 x A100 80GB in us-central1.
    accelerator_regions={"TPU": "europe-west4", "GPU": "us-central1"},
    base_models=(
        "text-bison@001",
        "text-bison@002",
        "text-bison-32k@002",
        "code-bison@001",
        "code-bison@002",
    ),
)

TEMPLATES = {TUNE_LARGE_MODEL.uri: TUNE_LARGE_MODEL}


def find(uri: str) -> Template | None:
    return TEMPLATES.get(uri.rstrip("/"))


def check_parameters(template: Template, values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(values with defaults filled in, the first problem or None), as the template reports it."""
    for name in values:
        if name not in template.parameters:
            return values, (
                f"The pipeline parameter {name} is not found in the pipeline job input definitions of "
                f"{template.name} {template.version}; known parameters: {sorted(template.parameters)}"
            )
    resolved = {}
    for name, parameter in template.parameters.items():
        if name not in values:
            if parameter.default is None:
                return (
                    values,
                    f"The pipeline parameter {name} of {template.name} is required but was not given",
                )
            resolved[name] = parameter.default
            continue
        value = values[name]
        if name == "enable_checkpoint_selection" and isinstance(value, bool):
            value = "true" if value else "false"  # the SDK passes a bool; the template takes a string
        if not parameter.accepts(value):
            return values, (
                f"The pipeline parameter {name} of {template.name} expects {parameter.type}, "
                f"got {type(value).__name__} {value!r}"
            )
        resolved[name] = int(value) if parameter.type == "NUMBER_INTEGER" else value
    return resolved, None
