"""Plan a tuning run before launch: steps, batch size, epochs covered, duration, limits.

Pipeline models (text-bison): steps = ceil(epochs x train_examples / batch_size), with the batch
size of the chosen accelerator (catalog, sourced) unless overridden. Gemini tuning jobs take
epochs and an adapter size; Vertex picks batch size and hardware, so there are no steps to plan.
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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

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
                f"({_hours(self.eta_low_seconds)} to {_hours(self.eta_high_seconds)}; {self.eta_source})"
            )
            return head + eta
        adapter = self.adapter_size if self.adapter_size is not None else "Vertex default"
        return (
            f"{self.model}: tuningJobs API in {self.region}\n"
            f"  {self.train_examples:,} training examples, {self.epochs:g} epochs, adapter size {adapter}\n"
            f"  batch size and hardware: chosen by Vertex; duration: {self.eta_source}"
        )


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


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
) -> TuningPlan:
    """The plan for tuning `model` on `train_examples` examples; PlanError when over limits."""
    spec = get_model(model)
    if train_examples <= 0:
        raise PlanError(f"{spec.name}: no training examples: nothing to plan")
    chosen_epochs = float(epochs) if epochs is not None else float(spec.default_epochs)
    if spec.method is TuningMethod.TUNING_JOB:
        return _plan_tuning_job(
            spec.name, train_examples, chosen_epochs, adapter_size, region, max_train_steps
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
    )


def _plan_tuning_job(
    model: str,
    train_examples: int,
    epochs: float,
    adapter_size: int | None,
    region: str | None,
    max_train_steps: int,
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
        eta_seconds=None,
        eta_low_seconds=None,
        eta_high_seconds=None,
        eta_source="not documented by Google for Gemini tuning jobs",
        max_train_steps=max_train_steps,
    )
