"""Plan a tuning run before launch: steps, batch size, epochs covered, duration, cost, limits.

Pipeline models (text-bison): steps = ceil(epochs x train_examples / batch_size), with the batch
size of the chosen accelerator (catalog, sourced) unless overridden; duration = steps x seconds per
step, cost = duration x the accelerator's hourly price. Gemini tuning jobs take epochs and an adapter
size; Vertex picks batch size and hardware, so there are no steps to plan; cost = training tokens
(the estimated tokens of the training split x epochs) x the model's price per 1M training tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

from aria_tuning.catalog import TuningMethod, get_model
from aria_tuning.errors import PlanError

#: Refuse plans above this many steps unless the caller raises it (10,000 steps: about 20-30 h
#: of a 64-core TPU v3 pod at the console's "1,000 steps take 2 to 3 hours").
DEFAULT_MAX_TRAIN_STEPS = 10_000


@dataclass(frozen=True)
class TuningPlan:
    model: str
    method: str  # "pipeline" | "tuning_job"
    accelerator: str | None  # "TPU" | "GPU"; None for tuning jobs
    region: str
    batch_size: int | None
    batch_size_source: str
    train_examples: int
    train_steps: int | None  # None for tuning jobs
    epochs: float
    epochs_covered: float
    adapter_size: int | None  # tuning jobs; None: Vertex's default
    eta_seconds: float | None
    eta_low_seconds: float | None
    eta_high_seconds: float | None
    eta_source: str
    max_train_steps: int
    #: Tuning jobs: estimated tokens of the training split x epochs, what Google bills (None: pipeline,
    #: or no token estimate was given).
    training_tokens: int | None = None
    cost_low_usd: float | None = None
    cost_high_usd: float | None = None
    cost_source: str = "no price known"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def eta_and_cost(self) -> str:
        """One line: the duration range and the cost range, each with where its figures come from."""
        if self.eta_low_seconds is None or self.eta_high_seconds is None:
            eta = f"duration unknown ({self.eta_source})"
        else:
            eta = f"{_hours(self.eta_low_seconds)} to {_hours(self.eta_high_seconds)} ({self.eta_source})"
        return f"takes {eta}; costs {_usd(self.cost_low_usd, self.cost_high_usd)} ({self.cost_source})"

    def summary(self) -> str:
        """The plan in a few lines, for logs and the CLI."""
        if self.method == TuningMethod.PIPELINE:
            head = (
                f"{self.model}: tune-large-model pipeline on {self.accelerator} in {self.region}\n"
                f"  {self.train_examples:,} training examples, batch size {self.batch_size} "
                f"({self.batch_size_source})\n"
                f"  train_steps = ceil({self.epochs:g} epochs x {self.train_examples:,} / "
                f"{self.batch_size}) = {self.train_steps:,} (covers {self.epochs_covered:.2f} epochs; "
                f"limit {self.max_train_steps:,})\n"
            )
            eta = (
                f"  estimated duration {_hours(self.eta_seconds)} "
                f"({_hours(self.eta_low_seconds)} to {_hours(self.eta_high_seconds)}; {self.eta_source})\n"
            )
            return (
                head
                + eta
                + f"  estimated cost {_usd(self.cost_low_usd, self.cost_high_usd)} ({self.cost_source})"
            )
        adapter = self.adapter_size if self.adapter_size is not None else "Vertex default"
        tokens = f"{self.training_tokens:,}" if self.training_tokens is not None else "unknown"
        return (
            f"{self.model}: tuningJobs API in {self.region}\n"
            f"  {self.train_examples:,} training examples, {self.epochs:g} epochs, adapter size {adapter}\n"
            f"  batch size and hardware: chosen by Vertex\n"
            f"  training tokens (estimated tokens of the training split x epochs): {tokens}\n"
            f"  {self.eta_and_cost()}"
        )


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _usd(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "unknown"
    return f"${low:,.2f}" if low == high else f"${low:,.2f} to ${high:,.2f}"


def train_steps_for(epochs: float, train_examples: int, batch_size: int) -> int:
    """ceil(epochs x examples / batch), exact (no float rounding: 0.1 x 30 / 3 is 1, not 2)."""
    if train_examples <= 0:
        raise PlanError("no training examples: nothing to plan")
    if batch_size <= 0:
        raise PlanError(f"batch size must be positive, got {batch_size}")
    if epochs <= 0:
        raise PlanError(f"epochs must be positive, got {epochs}")
    return max(1, math.ceil(Fraction(str(epochs)) * train_examples / batch_size))


def plan_tuning(
    model: str,
    train_examples: int,
    *,
    epochs: float | None = None,
    accelerator: str | None = None,
    batch_size: int | None = None,
    train_steps: int | None = None,
    adapter_size: int | None = None,
    region: str | None = None,
    max_train_steps: int = DEFAULT_MAX_TRAIN_STEPS,
    tokens_per_example: float | None = None,
) -> TuningPlan:
    """The plan for tuning `model` on `train_examples` examples; PlanError when over limits.

    `tokens_per_example`: dataprep's estimate of an average example's input + output tokens, which a
    tuning job's cost is computed from (without it the cost is unknown).
    """
    spec = get_model(model)
    if train_examples <= 0:
        raise PlanError(f"{spec.name}: no training examples: nothing to plan")
    chosen_epochs = float(epochs) if epochs is not None else float(spec.default_epochs)
    if spec.method is TuningMethod.TUNING_JOB:
        return _plan_tuning_job(
            spec.name,
            train_examples,
            chosen_epochs,
            adapter_size,
            region,
            max_train_steps,
            tokens_per_example,
        )
    if adapter_size is not None:
        raise PlanError(f"{spec.name}: adapter size applies to Gemini tuning jobs only")
    acc = spec.accelerator(accelerator)
    used_batch = batch_size if batch_size is not None else acc.batch_size
    source = "user override" if batch_size is not None else acc.batch_size_source
    if train_steps is not None:
        if train_steps <= 0:
            raise PlanError(f"train_steps must be positive, got {train_steps}")
        steps = train_steps
    else:
        steps = train_steps_for(chosen_epochs, train_examples, used_batch)
    if steps > max_train_steps:
        raise PlanError(
            f"{spec.name}: {steps:,} training steps is over the limit of {max_train_steps:,} "
            f"(about {steps * acc.seconds_per_step / 3600:.0f} h on {acc.description}); lower the "
            "epochs, set train_steps, or raise max_train_steps"
        )
    low, high = acc.seconds_per_step_range
    price = acc.price_per_hour
    return TuningPlan(
        model=spec.name,
        method=spec.method.value,
        accelerator=acc.name,
        region=spec.region_for(acc.name, region),
        batch_size=used_batch,
        batch_size_source=source,
        train_examples=train_examples,
        train_steps=steps,
        epochs=chosen_epochs,
        epochs_covered=round(steps * used_batch / train_examples, 4),
        adapter_size=None,
        eta_seconds=round(steps * acc.seconds_per_step, 1),
        eta_low_seconds=round(steps * low, 1),
        eta_high_seconds=round(steps * high, 1),
        eta_source=acc.seconds_per_step_source,
        max_train_steps=max_train_steps,
        cost_low_usd=round(steps * low / 3600 * price.usd, 2) if price else None,
        cost_high_usd=round(steps * high / 3600 * price.usd, 2) if price else None,
        cost_source=f"duration x {price.describe()}" if price else "no price known for this hardware",
    )


def _plan_tuning_job(
    model: str,
    train_examples: int,
    epochs: float,
    adapter_size: int | None,
    region: str | None,
    max_train_steps: int,
    tokens_per_example: float | None,
) -> TuningPlan:
    spec = get_model(model)
    if epochs != int(epochs) or epochs < 1:
        raise PlanError(f"{model}: tuning jobs take a whole number of epochs (>= 1), got {epochs:g}")
    if adapter_size is not None and adapter_size not in spec.adapter_sizes:
        raise PlanError(
            f"{model}: adapter size {adapter_size} is not offered; choose one of {list(spec.adapter_sizes)}"
        )
    if spec.max_train_examples is not None and train_examples > spec.max_train_examples:
        raise PlanError(
            f"{model}: {train_examples:,} training examples, over the limit of {spec.max_train_examples:,}"
        )
    tokens = round(tokens_per_example * train_examples * epochs) if tokens_per_example else None
    price = spec.tuning_price
    cost = round(tokens / 1_000_000 * price.usd, 2) if tokens is not None and price else None
    low, high = spec.eta_range_seconds or (None, None)
    return TuningPlan(
        model=model,
        method=spec.method.value,
        accelerator=None,
        region=spec.region_for(None, region),
        batch_size=None,
        batch_size_source="chosen by Vertex (tuningJobs take no batch size for Gemini)",
        train_examples=train_examples,
        train_steps=None,
        epochs=epochs,
        epochs_covered=epochs,
        adapter_size=adapter_size,
        # No point estimate: the range is not Google's, so polling stays plain backoff (no finish-aware
        # schedule built on a guess).
        eta_seconds=None,
        eta_low_seconds=low,
        eta_high_seconds=high,
        eta_source=spec.eta_source or "not documented by Google for Gemini tuning jobs",
        max_train_steps=max_train_steps,
        training_tokens=tokens,
        cost_low_usd=cost,
        cost_high_usd=cost,
        cost_source=(
            f"training tokens x {price.describe()}"
            if price and tokens is not None
            else ("no token estimate" if price else "no tuning price known for this model")
        ),
    )
