"""The model catalog: which base models can be tuned, how, where, and within which limits.

Pure data and lookups, no Airflow and no Google import: dataset prep, planning, the operators
and the DAG's trigger form all read this one table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    """The JSONL shape a tuning method expects for its training and evaluation files.

    What a model trains on, hence what dataprep writes. The shapes a raw dataset may arrive in
    are another vocabulary, `dataprep.input_formats.InputFormat` (chat messages, CSV, and these
    two, whose values it takes from here).
    """

    #: {"input_text": ..., "output_text": ...}
    PALM = "palm"
    #: {"systemInstruction"?: ..., "contents": [{"role": "user"|"model", "parts": [{"text": ...}]}]}
    GEMINI = "gemini"


@dataclass(frozen=True)
class Price:
    """A list price from one of Google's pricing pages: what it buys, where it is published, as of when."""

    usd: float
    unit: str  # what `usd` buys: "hour of a TPU v3 pod slice", "1M training tokens"
    source: str
    as_of: str  # the date the page showed, or how old the figure is when no copy was read
    #: False: no stored copy of `source` showing this figure was found; check the page before relying on it.
    verified: bool = False

    def describe(self) -> str:
        checked = "" if self.verified else "; not re-verified"
        return f"${self.usd:,.2f} per {self.unit} ({self.source}, {self.as_of}{checked})"


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
    #: Low and high ends of the seconds-per-step figure, for the plan's ETA range.
    seconds_per_step_range: tuple[float, float] = (7.2, 10.8)
    #: What an hour of this hardware costs while the pipeline's tuning step runs on it.
    price_per_hour: Price | None = None


# Google's tuning docs for text-bison ("Tune text models by using supervised tuning",
# cloud.google.com/vertex-ai/generative-ai/docs/models/tune-text-models-supervised): the
# tune-large-model pipeline runs on a "TPU v3 pod (64 cores)" in europe-west4 or on
# "8 x A100 80GB" in us-central1; a pipeline run in any other region fails. That page's
# `train_steps` entry gives the batch size per location: "For 8k models (text-bison@002 ...):
# us-central1 has a batch size of 8, europe-west4 has a batch size of 24. For 32k models
# (text-bison-32k ...): us-central1 has a batch size of 8, europe-west4 has a batch size of 8."
# NOT re-verified here: the stored copy of that page reachable from this project's search tool
# did not include the `train_steps` paragraph; the figures are the ones the issue quotes.
# What IS verified: the Vertex AI SDK (googleapis/python-aiplatform,
# vertexai/language_models/_language_models.py, TextGenerationModel.tune_model) documents
# "train_steps: Number of training batches to tune on (batch size is 8 samples)".
_STEP_TIME_SOURCE = "Cloud console: 1,000 steps take 2 to 3 hours (7.2-10.8 s/step; midpoint 9 s)"

# Hourly prices of the tuning hardware. The tune-large-model pipeline's tuning step runs on it as custom
# training, billed by the hour of the machines (Vertex AI pricing, cloud.google.com/vertex-ai/pricing,
# "Custom-trained models"; the stored copy this project's search tool reaches holds the page's opening
# only, not its price rows). NOT verified against a stored copy: TPU v3 at $2.00 per chip-hour on demand
# in europe-west4 (Cloud TPU pricing), a 64-core v3 pod slice being 32 chips; NVIDIA A100 80GB at $3.93
# per GPU-hour on demand in us-central1 (Compute Engine GPU pricing), 8 of them. Google's 2024-2025 list
# prices; check the pages before quoting a budget.
# Searched again on 2026-12-01 (the search tool's "pages" and "docs" corpora): "Cloud TPU pricing TPU v3 per
# chip-hour on-demand europe-west4", "Cloud TPU pricing v3-8 ... v3-32 pod commitment", "Vertex AI pricing
# custom-trained models TPU v3 Pod 32 cores price per hour europe-west4", "Compute Engine GPU pricing NVIDIA
# A100 80GB per GPU hour us-central1 a2-ultragpu". Stored copies exist of cloud.google.com/tpu/pricing
# (several languages, an undated copy from when TPU v4 was in Preview), cloud.google.com/vertex-ai/pricing
# and cloud.google.com/compute/docs/gpus, each only as its opening: no price row of either figure. What
# the TPU page's opening does say: "TPU Pod type pricing ... These TPU types are available only if you have
# evaluation quota or purchase a 1 year or 3 year commitment" (v2 and v3), so Cloud TPU had no on-demand
# price for a v3 pod slice; what the pipeline pays is Vertex AI's custom-training price for its TPU pod,
# which the stored Vertex AI pricing copy does not reach. Both figures stay unverified.
_PRICE_AGE = "2024-2025 list price"
TPU_V3_64_PRICE = Price(
    usd=64.00,
    unit="hour of a TPU v3 pod slice, 64 cores (32 chips x $2.00)",
    source="Cloud TPU pricing, cloud.google.com/tpu/pricing, v3 on demand, europe-west4",
    as_of=_PRICE_AGE,
)
A100_80GB_8_PRICE = Price(
    usd=31.44,
    unit="hour of 8 x NVIDIA A100 80GB (8 x $3.93)",
    source="Compute Engine GPU pricing, cloud.google.com/compute/gpus-pricing, A100 80GB on demand, "
    "us-central1",
    as_of=_PRICE_AGE,
)

TPU_V3_64 = AcceleratorSpec(
    name="TPU",
    description="TPU v3 pod, 64 cores",
    region="europe-west4",
    batch_size=24,
    batch_size_source=(
        "Vertex AI docs, 'Tune text models by using supervised tuning', train_steps: "
        "europe-west4 (TPU v3) batch size 24 for 8k models such as text-bison@002"
    ),
    seconds_per_step=9.0,
    seconds_per_step_source=_STEP_TIME_SOURCE,
    price_per_hour=TPU_V3_64_PRICE,
)
TPU_V3_64_32K = AcceleratorSpec(
    name="TPU",
    description="TPU v3 pod, 64 cores",
    region="europe-west4",
    batch_size=8,
    batch_size_source=(
        "Vertex AI docs, 'Tune text models by using supervised tuning', train_steps: "
        "europe-west4 (TPU v3) batch size 8 for 32k models such as text-bison-32k"
    ),
    seconds_per_step=9.0,
    seconds_per_step_source=_STEP_TIME_SOURCE,
    price_per_hour=TPU_V3_64_PRICE,
)
GPU_A100_8 = AcceleratorSpec(
    name="GPU",
    description="8 x NVIDIA A100 80GB",
    region="us-central1",
    batch_size=8,
    batch_size_source=(
        "Vertex AI docs, 'Tune text models by using supervised tuning', train_steps: "
        "us-central1 (8 x A100 80GB) batch size 8; the Vertex AI SDK's tune_model also "
        "documents 'batch size is 8 samples'"
    ),
    seconds_per_step=9.0,
    seconds_per_step_source=_STEP_TIME_SOURCE,
    price_per_hour=A100_80GB_8_PRICE,
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
    #: Limit on input + output tokens of one example (None: only the two limits above).
    max_total_tokens: int | None = None
    #: Largest training set Vertex accepts: examples, and bytes of the JSONL file.
    max_train_examples: int | None = None
    max_train_file_bytes: int | None = None
    #: Pipeline models: the accelerators offered, by `accelerator_type` name.
    accelerators: dict[str, AcceleratorSpec] = field(default_factory=dict)
    #: Tuning-job models: the regions offered (hardware is Vertex's choice).
    regions: tuple[str, ...] = ()
    default_epochs: int = 3
    adapter_sizes: tuple[int, ...] = ()
    retired_on: dt.date | None = None
    replacement: str | None = None
    notes: str = ""
    #: Tuning-job models: the price of 1M training tokens (the training split's tokens x epochs).
    tuning_price: Price | None = None
    #: Tuning-job models: how long a tuning job takes, low and high, with where that figure comes from
    #: (pipeline models derive theirs from steps x the accelerator's seconds per step).
    eta_range_seconds: tuple[float, float] | None = None
    eta_source: str = ""

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
        except KeyError as exc:
            raise CatalogError(
                f"{self.name}: accelerator {name!r} is not offered; choose one of {sorted(self.accelerators)}"
            ) from exc

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

#: The model a first real run succeeds with: tunable on Vertex today and not retired (see MODELS).
DEFAULT_MODEL = "gemini-3.5-flash"

_PALM_COMMON: dict[str, Any] = dict(
    method=TuningMethod.PIPELINE,
    data_format=DataFormat.PALM,
    # Vertex AI docs, "Prepare supervised tuning data" for text models: at least 10 examples
    # (100-500 recommended). Not re-verified: no stored copy of that page was found.
    min_examples=10,
    max_eval_examples=None,
    accelerators={"TPU": TPU_V3_64, "GPU": GPU_A100_8},
    retired_on=_PALM_RETIRED,
    replacement=DEFAULT_MODEL,
)

# Which Gemini models Vertex tunes, as of the newest stored copy of Google's pages this project can read:
# the Gemini tuning API reference, https://docs.cloud.google.com/gemini-enterprise-agent-platform/
# reference/models/tuning (Vertex AI's generative AI docs under their 2026 name), "Supported models: You
# can use supervised fine-tuning on the following Gemini models: Gemini 3.5 Flash-Lite, Gemini 3.5 Flash,
# Gemini 3.1 Flash-Lite, Gemini 2.5 Pro, ..." (the stored copy ends there; no date is visible in it;
# read 2026-12-01). The "About supervised fine-tuning" page (docs.cloud.google.com/vertex-ai/generative-ai/
# docs/models/tune-text-models-supervised) has limitation tables for "Gemini 3.5 Flash / Gemini 3.5
# Flash-Lite" first, then the 2.5 models. Model ids: gemini-3.5-flash (GA) and gemini-3.1-flash-lite (GA)
# from "Developer's guide to Gemini 3.5 Flash" (docs.cloud.google.com/gemini-enterprise-agent-platform/
# models/guides/gemini-3-5-flash, its comparison table, "Model ID"); gemini-3.5-flash-lite from Google's
# Gemini API page "What's new in Gemini 3.6" (ai.google.dev/gemini-api/docs/whats-new-gemini-3.6).
TUNABLE_MODELS_SOURCE = (
    "https://docs.cloud.google.com/gemini-enterprise-agent-platform/reference/models/tuning "
    "(Supported models; no date shown in the stored copy, read 2026-12-01)"
)

# Retirement of the 2.x models (Vertex AI, "Model versions and lifecycle", docs.cloud.google.com/vertex-ai/
# docs/generative-ai/learn/model-versioning, "Latest stable models" table): gemini-2.5-pro and
# gemini-2.5-flash released 2025-06-17, retirement 2026-06-17; gemini-2.5-flash-lite 2025-07-22 /
# 2026-07-22; gemini-2.0-flash-001 2025-02-05 / 2026-02-05. The same page: "One month before the
# retirement date, new access to the model is blocked for online inference, batch inference, and tuning."
_GEMINI_RETIREMENT_SOURCE = "Vertex AI docs, 'Model versions and lifecycle', latest stable models"

# Google publishes no duration for Gemini tuning jobs. The one figure found: a third-party guide,
# hexdocs.pm/gemini_ex/tunings.html, "Cost Considerations: Training time (typically 1-4 hours)".
# Searched again on 2026-12-01 ("docs": "how long does a Gemini supervised tuning job take to complete
# Vertex AI hours"): Google's "Tune Gemini models by using supervised fine-tuning" pages in their stored
# copies give no duration; only that guide does.
_GEMINI_ETA_SOURCE = (
    "Google publishes no duration for Gemini tuning jobs; 1 to 4 h from a third-party guide "
    "(hexdocs.pm/gemini_ex/tunings.html: 'Training time (typically 1-4 hours)')"
)

# Gemini tuning price, per 1M training tokens, where "training tokens = the tokens in the training
# dataset x the number of epochs" (Vertex AI generative AI pricing, cloud.google.com/vertex-ai/
# generative-ai/pricing, "Tuning"). NOT verified against a stored copy (the copies reachable here hold no
# tuning rows): Google's 2025 list prices gemini-2.5-pro $25, gemini-2.5-flash $5, gemini-2.5-flash-lite
# $1.50, gemini-2.0-flash $3. No tuning price was found for the 3.x models: their estimate assumes the
# 2.5 model of the same tier costs the same, and says so.
# Searched again on 2026-12-01 ("pages" and "docs" corpora): "Vertex AI generative AI pricing tuning per 1M
# training tokens Gemini 2.5 Flash supervised fine-tuning", "Gemini 2.5 Flash tuning $5 per 1M training
# tokens Vertex AI pricing", "cloud.google.com/vertex-ai/generative-ai/pricing Tuning training tokens
# price", "Vertex AI pricing generative AI Tuning Gemini 2.5 Pro training per 1M tokens $25", "Gemini
# Enterprise Agent Platform pricing supervised tuning training tokens", "Generative AI on Vertex AI pricing
# page Gemini models tuning price". No copy of Google's generative AI pricing page came back, only
# third-party pages quoting inference prices; the figures stay unverified.
_TUNING_PRICES = "Vertex AI generative AI pricing, cloud.google.com/vertex-ai/generative-ai/pricing, Tuning"


def _tuning_price(usd: float, assumed_from: str | None = None) -> Price:
    if assumed_from is None:
        return Price(usd, "1M training tokens", _TUNING_PRICES, "2025 list price")
    return Price(
        usd,
        "1M training tokens",
        f"no published tuning price found; assumed equal to {assumed_from}'s ({_TUNING_PRICES})",
        "2025 list price of the model it is assumed from",
    )


_GEMINI_COMMON: dict[str, Any] = dict(
    method=TuningMethod.TUNING_JOB,
    data_format=DataFormat.GEMINI,
    # Verified (Vertex AI docs, "About supervised fine-tuning for Gemini models", Limitations,
    # Gemini 2.5 Flash / Flash-Lite table): "Maximum input and output training tokens 131,072",
    # "Maximum validation dataset size 5000 examples", "Maximum training dataset file size 1GB
    # for JSONL", "Maximum training dataset size 1M text-only examples", "Adapter size:
    # supported values are 1, 2, 4, 8, and 16". The other models' tables were cut from the
    # stored copy: their token, size and example limits are assumed equal (unverified).
    max_input_tokens=131_072,
    max_output_tokens=131_072,
    max_total_tokens=131_072,
    # Vertex AI docs, "Prepare supervised tuning data" (Gemini 1.0-era page): "A training
    # dataset must include a minimum of 16 examples". The 2.5 pages state no minimum.
    min_examples=16,
    max_eval_examples=5_000,
    max_train_examples=1_000_000,
    max_train_file_bytes=1_000_000_000,
    # Assumed for the 3.x models too: the stored regions page predates them.
    regions=GEMINI_TUNING_REGIONS,
    default_epochs=3,
    adapter_sizes=(1, 2, 4, 8, 16),
    eta_range_seconds=(3_600.0, 14_400.0),
    eta_source=_GEMINI_ETA_SOURCE,
)
# Unverified (the stored docs cut these tables): Gemini 2.5 Pro and 2.0 Flash adapter sizes
# 1, 2, 4 and 8 (16 not offered), as the docs listed for the earlier Pro models.
_GEMINI_SMALL_ADAPTERS: dict[str, Any] = {**_GEMINI_COMMON, "adapter_sizes": (1, 2, 4, 8)}


def _retired(on: dt.date, replacement: str) -> dict[str, Any]:
    return {"retired_on": on, "replacement": replacement, "notes": _GEMINI_RETIREMENT_SOURCE}


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # The seed's model and profile: kept so its runs can be reproduced (real Vertex refuses it).
        ModelSpec(name="text-bison@001", max_input_tokens=8_192, max_output_tokens=1_024, **_PALM_COMMON),
        ModelSpec(name="text-bison@002", max_input_tokens=8_192, max_output_tokens=1_024, **_PALM_COMMON),
        ModelSpec(
            name="text-bison-32k",
            max_input_tokens=32_768,
            max_output_tokens=8_192,
            # 32k context: input and output together (model card "text-bison-32k").
            max_total_tokens=32_768,
            **{**_PALM_COMMON, "accelerators": {"TPU": TPU_V3_64_32K, "GPU": GPU_A100_8}},
        ),
        # Tunable today (TUNABLE_MODELS_SOURCE), newest first.
        ModelSpec(
            name="gemini-3.5-flash", tuning_price=_tuning_price(5.00, "gemini-2.5-flash"), **_GEMINI_COMMON
        ),
        ModelSpec(
            name="gemini-3.5-flash-lite",
            tuning_price=_tuning_price(1.50, "gemini-2.5-flash-lite"),
            **_GEMINI_COMMON,
        ),
        ModelSpec(
            name="gemini-3.1-flash-lite",
            tuning_price=_tuning_price(1.50, "gemini-2.5-flash-lite"),
            **_GEMINI_COMMON,
        ),
        # Listed for tuning, but past their retirement date on Vertex (_GEMINI_RETIREMENT_SOURCE).
        ModelSpec(
            name="gemini-2.5-pro",
            tuning_price=_tuning_price(25.00),
            **{**_GEMINI_SMALL_ADAPTERS, **_retired(dt.date(2026, 6, 17), "gemini-3.5-flash")},
        ),
        ModelSpec(
            name="gemini-2.5-flash",
            tuning_price=_tuning_price(5.00),
            **{**_GEMINI_COMMON, **_retired(dt.date(2026, 6, 17), "gemini-3.5-flash")},
        ),
        ModelSpec(
            name="gemini-2.5-flash-lite",
            tuning_price=_tuning_price(1.50),
            **{**_GEMINI_COMMON, **_retired(dt.date(2026, 7, 22), "gemini-3.5-flash-lite")},
        ),
        ModelSpec(
            name="gemini-2.0-flash-001",
            tuning_price=_tuning_price(3.00),
            **{**_GEMINI_SMALL_ADAPTERS, **_retired(dt.date(2026, 2, 5), "gemini-3.5-flash")},
        ),
    )
}


def model_names() -> list[str]:
    """Every base model in the catalog: PaLM first (the seed's), then Gemini, newest first."""
    return list(MODELS)


def price_guide() -> str:
    """How long and how much, per method, for the trigger form: the catalog's figures and sources."""
    tpu, gpu = TPU_V3_64_PRICE, A100_80GB_8_PRICE
    per_model = ", ".join(
        f"{spec.name} ${spec.tuning_price.usd:g}"
        for spec in MODELS.values()
        if spec.tuning_price is not None and not spec.is_retired()
    )
    low, high = _GEMINI_COMMON["eta_range_seconds"]
    return (
        "text-bison (pipeline): ETA = train steps x 7.2-10.8 s (Cloud console: 1,000 steps take 2 to 3 "
        f"hours); cost = that time x ${tpu.usd:g}/h for the TPU v3 pod, ${gpu.usd:g}/h for 8 x A100 80GB "
        f"({tpu.source}; {gpu.source}). Gemini (tuning job): ETA {low / 3600:g}-{high / 3600:g} h "
        "(Google publishes none; a third-party guide's figure); cost = estimated training tokens x epochs "
        f"x the price per 1M training tokens ({per_model}; {_TUNING_PRICES}). Prices are "
        "list prices not re-verified here. The plan (prepare_dataset's log, the dry run) gives both for "
        "your data."
    )


def get_model(name: str) -> ModelSpec:
    """The catalog entry for `name`; raises CatalogError naming the known models."""
    try:
        return MODELS[name]
    except KeyError as exc:
        raise CatalogError(f"unknown base model {name!r}; the catalog knows {model_names()}") from exc
