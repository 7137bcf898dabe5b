"""Pipeline templates the emulator knows, with their real parameter names and types.

Only Google's `tune-large-model` (PaLM text-bison adapter tuning, v2.0.0) is known. Vertex
fetches a template from Artifact Registry by `templateUri`; the emulator looks it up here (`find`),
and recognises a locally compiled copy submitted inline by its pipeline name (`named`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vertex_emulator import pipeline_specs
from vertex_emulator.pipeline_specs import Parameter, Task

#: The KFP version the template's spec says it was compiled with.
KFP_VERSION = "2.0.0"
TUNE_LARGE_MODEL_URI = (
    "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
)


@dataclass(frozen=True)
class Template:
    uri: str
    name: str
    version: str
    parameters: dict[str, Parameter]
    #: The root DAG's tasks, in the order they run.
    tasks: tuple[Task, ...]
    #: Which accelerator runs in which region (the template's own validation).
    accelerator_regions: dict[str, str]
    base_models: tuple[str, ...]

    def pipeline_spec(self) -> dict[str, Any]:
        """The compiled spec Vertex fetches for `uri` and stores on the job."""
        return pipeline_specs.build(self.name, self.parameters, self.tasks, f"kfp-{KFP_VERSION}")


def _chain(*tasks: Task) -> tuple[Task, ...]:
    """`tasks`, each running after the one before it."""
    return tuple(Task(t.name, t.inputs, (tasks[i - 1].name,) if i else ()) for i, t in enumerate(tasks))


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
    # The emulator's task breakdown of the template (a linear chain; the real template has more
    # bookkeeping tasks). Each task takes the parameters it needs from the pipeline's inputs.
    tasks=_chain(
        Task(
            "validate-pipeline",
            (
                "project",
                "location",
                "large_model_reference",
                "dataset_uri",
                "evaluation_data_uri",
                "accelerator_type",
                "encryption_spec_key_name",
            ),
        ),
        Task("export-managed-dataset", ("project", "location", "dataset_uri")),
        Task("dataset-encoder", ("large_model_reference", "default_context", "max_context_length")),
        Task(
            "large-language-model-tuner",
            (
                "project",
                "location",
                "large_model_reference",
                "train_steps",
                "learning_rate",
                "learning_rate_multiplier",
                "evaluation_interval",
                "evaluation_output_root_dir",
                "enable_early_stopping",
                "enable_checkpoint_selection",
                "tensorboard_resource_id",
                "accelerator_type",
                "tpu_training_skip_cmek",
                "encryption_spec_key_name",
            ),
        ),
        Task(
            "upload-llm-model",
            (
                "project",
                "location",
                "large_model_reference",
                "model_display_name",
                "encryption_spec_key_name",
            ),
        ),
        Task("deploy-llm-model", ("project", "location", "model_display_name", "encryption_spec_key_name")),
    ),
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


def named(pipeline_name: str) -> Template | None:
    """The template a compiled spec is a build of, by its `pipelineInfo.name`."""
    return next((t for t in TEMPLATES.values() if t.name == pipeline_name), None)
