"""The model catalog: which base models can be tuned, how, where, and within which limits.

Pure data and lookups, no Airflow and no Google import: dataset prep, planning, the operators
and the DAG's trigger form all read this one table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from aria_tuning.errors import CatalogError

TUNE_LARGE_MODEL_TEMPLATE = (
    "https://us-kfp.pkg.dev/ml-pipeline/large-language-model-pipelines/tune-large-model/v2.0.0"
)


class TuningMethod(StrEnum):
    """How Vertex tunes a model."""

    #: The `tune-large-model` Vertex Pipelines template (PaLM text-bison models).
    PIPELINE = "pipeline"
    #: The `tuningJobs` API: Gemini supervised fine-tuning (Vertex picks the hardware).
    TUNING_JOB = "tuning_job"


class DataFormat(StrEnum):
    """The JSONL shape a tuning method expects for its training and evaluation files."""

    #: {"input_text": ..., "output_text": ...}
    PALM = "palm"
    #: {"systemInstruction"?: ..., "contents": [{"role": "user"|"model", "parts": [{"text": ...}]}]}
    GEMINI = "gemini"


@dataclass(frozen=True)
class AcceleratorSpec:
    """One hardware choice of the tune-large-model pipeline, pinned to the region that offers it."""

    name: str  # the value the pipeline's `accelerator_type` parameter takes: "TPU" or "GPU"
    description: str
    region: str
    batch_size: int
    batch_size_source: str
    seconds_per_step: float
    seconds_per_step_source: str


# Google's tuning docs for text-bison: "TPU v3 pod (64 cores) in europe-west4" and
# "8 x A100 80GB in us-central1"; a pipeline run in any other region fails.
TPU_V3_64 = AcceleratorSpec(
    name="TPU",
    description="TPU v3 pod, 64 cores",
    region="europe-west4",
    batch_size=24,
    batch_size_source=(
        "Vertex AI docs, 'Tune text models' (text-bison@002): batch size 24 for TPU v3 "
        "tuning in europe-west4"
    ),
    seconds_per_step=9.0,
    seconds_per_step_source="Cloud console: 1,000 steps take 2 to 3 hours (7.2-10.8 s/step; midpoint)",
)
GPU_A100_8 = AcceleratorSpec(
    name="GPU",
    description="8 x NVIDIA A100 80GB",
    region="us-central1",
    batch_size=8,
    batch_size_source=(
        "Vertex AI docs, 'Tune text models' (text-bison@002): batch size 8 for A100 80GB "
        "tuning in us-central1"
    ),
    seconds_per_step=9.0,
    seconds_per_step_source="Cloud console: 1,000 steps take 2 to 3 hours (7.2-10.8 s/step; midpoint)",
)

# Regions where Gemini supervised tuning is offered (Vertex AI docs, "Supervised fine-tuning
# for Gemini: supported regions").
GEMINI_TUNING_REGIONS = (
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west4",
    "europe-west1",
    "europe-west4",
    "europe-west9",
    "asia-northeast1",
    "asia-southeast1",
)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the project needs to know about one tunable base model."""

    name: str
    method: TuningMethod
    data_format: DataFormat
    #: Per-example token limits (estimated, see dataprep's token estimator).
    max_input_tokens: int
    max_output_tokens: int
    #: Fewest examples Vertex accepts for tuning this model.
    min_examples: int
    #: Largest evaluation set the method accepts (None: no documented limit).
    max_eval_examples: int | None
    #: Pipeline models: the accelerators offered, by `accelerator_type` name.
    accelerators: dict[str, AcceleratorSpec] = field(default_factory=dict)
    #: Tuning-job models: the regions offered (hardware is Vertex's choice).
    regions: tuple[str, ...] = ()
    default_epochs: int = 3
    adapter_sizes: tuple[int, ...] = ()
    retired_on: dt.date | None = None
    replacement: str | None = None
    notes: str = ""

    @property
    def default_accelerator(self) -> str | None:
        return "TPU" if "TPU" in self.accelerators else next(iter(self.accelerators), None)

    def is_retired(self, today: dt.date | None = None) -> bool:
        return self.retired_on is not None and (today or dt.date.today()) >= self.retired_on

    def retirement_warning(self, today: dt.date | None = None) -> str | None:
        """A sentence for the log when tuning this model is retired by Google, else None."""
        if not self.is_retired(today):
            return None
        return (
            f"{self.name}: Google retired tuning of this model on {self.retired_on:%Y-%m-%d}; "
            f"real Vertex AI rejects new tuning runs. Suggested replacement: {self.replacement}."
        )

    def accelerator(self, name: str | None) -> AcceleratorSpec:
        """The accelerator spec for a pipeline model; `None` picks the default (TPU)."""
        if self.method is not TuningMethod.PIPELINE:
            raise CatalogError(f"{self.name} is tuned by the tuningJobs API: Vertex chooses the hardware")
        chosen = (name or self.default_accelerator or "").upper()
        try:
            return self.accelerators[chosen]
        except KeyError:
            raise CatalogError(
                f"{self.name}: accelerator {name!r} is not offered; choose one of {sorted(self.accelerators)}"
            ) from None

    def region_for(self, accelerator: str | None = None, region: str | None = None) -> str:
        """The region a run must use; raises when `region` contradicts the model or accelerator."""
        if self.method is TuningMethod.PIPELINE:
            spec = self.accelerator(accelerator)
            if region and region != spec.region:
                raise CatalogError(
                    f"{self.name}: accelerator {spec.name} ({spec.description}) runs only in "
                    f"{spec.region}, not in {region}"
                )
            return spec.region
        chosen = region or self.regions[0]
        if chosen not in self.regions:
            raise CatalogError(
                f"{self.name}: tuning is not offered in {chosen}; choose one of {list(self.regions)}"
            )
        return chosen


_PALM_RETIRED = dt.date(2025, 4, 9)

_PALM_COMMON = dict(
    method=TuningMethod.PIPELINE,
    data_format=DataFormat.PALM,
    # Vertex AI docs, "Prepare supervised tuning data" for text models: at least 10 examples
    # (100-500 recommended).
    min_examples=10,
    max_eval_examples=None,
    accelerators={"TPU": TPU_V3_64, "GPU": GPU_A100_8},
    retired_on=_PALM_RETIRED,
    replacement="gemini-2.5-flash",
)

_GEMINI_COMMON = dict(
    method=TuningMethod.TUNING_JOB,
    data_format=DataFormat.GEMINI,
    # Vertex AI docs, "About supervised fine-tuning for Gemini": 131,072 input+output tokens
    # per training example; validation datasets at most 5,000 examples.
    max_input_tokens=131_072,
    max_output_tokens=131_072,
    min_examples=1,
    max_eval_examples=5_000,
    regions=GEMINI_TUNING_REGIONS,
    default_epochs=3,
    adapter_sizes=(1, 2, 4, 8, 16),
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(name="text-bison@001", max_input_tokens=8_192, max_output_tokens=1_024, **_PALM_COMMON),
        ModelSpec(name="text-bison@002", max_input_tokens=8_192, max_output_tokens=1_024, **_PALM_COMMON),
        ModelSpec(
            name="text-bison-32k",
            max_input_tokens=32_768,
            max_output_tokens=8_192,
            **_PALM_COMMON,
        ),
        ModelSpec(name="gemini-2.5-pro", **_GEMINI_COMMON),
        ModelSpec(name="gemini-2.5-flash", **_GEMINI_COMMON),
        ModelSpec(name="gemini-2.5-flash-lite", **_GEMINI_COMMON),
        ModelSpec(name="gemini-2.0-flash-001", **_GEMINI_COMMON),
    )
}

DEFAULT_MODEL = "text-bison@001"


def model_names() -> list[str]:
    """Every base model in the catalog, PaLM first (the team's default), then Gemini."""
    return list(MODELS)


def get_model(name: str) -> ModelSpec:
    """The catalog entry for `name`; raises CatalogError naming the known models."""
    try:
        return MODELS[name]
    except KeyError:
        raise CatalogError(f"unknown base model {name!r}; the catalog knows {model_names()}") from None
