"""`prepare_dataset`: raw files -> validated, converted, deduplicated, split and planned.

One parse of the sources (pass one) validates every example and streams the kept ones into
local temp files, already split. Only when the data and the plan are accepted are train.jsonl
and eval.jsonl published under the output prefix, then report.json, last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aria_tuning.catalog import get_model
from aria_tuning.dataprep import file_io
from aria_tuning.dataprep.plan import DEFAULT_MAX_TRAIN_STEPS, TuningPlan, plan_tuning
from aria_tuning.dataprep.report import build_report, write_report
from aria_tuning.dataprep.results import ValidationResult
from aria_tuning.dataprep.split_rule import eval_size_for
from aria_tuning.dataprep.split_writer import SplitWriter
from aria_tuning.dataprep.tokens import mean_tokens_per_example
from aria_tuning.dataprep.validate import gc_paused, validate_sources
from aria_tuning.errors import DatasetError, PlanError

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)

TRAIN_FILE, EVAL_FILE, REPORT_FILE = "train.jsonl", "eval.jsonl", "report.json"
INVALID_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class PrepResult:
    train_uri: str
    eval_uri: str | None  # None when the eval split is empty (no file is written)
    report_uri: str
    counts: dict[str, int]
    plan: TuningPlan
    content_sha256: str
    skipped: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        """Small JSON-able summary for XCom: URIs, counts, plan. Never the data."""
        return {
            "train_uri": self.train_uri,
            "eval_uri": self.eval_uri,
            "report_uri": self.report_uri,
            "counts": dict(self.counts),
            "plan": self.plan.to_dict(),
            "content_sha256": self.content_sha256,
            "skipped": len(self.skipped),
        }


def prepare_dataset(
    sources: list[str],
    model: str,
    output_prefix: str,
    *,
    epochs: float | None = None,
    accelerator: str | None = None,
    batch_size: int | None = None,
    train_steps: int | None = None,
    eval_fraction: float = 0.1,
    max_eval_examples: int | None = None,
    invalid_policy: str = "fail",
    max_invalid_fraction: float = 0.0,
    max_train_steps: int = DEFAULT_MAX_TRAIN_STEPS,
    adapter_size: int | None = None,
    input_column: str = "input_text",
    output_column: str = "output_text",
    storage_client: storage.Client | None = None,
) -> PrepResult:
    """Validate, convert, deduplicate, split and plan; write train/eval/report under `output_prefix`.

    Raises DatasetError (with every problem as `file:line: reason`) or PlanError before writing
    anything when the data is invalid under `invalid_policy` or the plan is over its limits.
    Every gs:// read and write goes through `storage_client` (default: a client for the
    environment, built on first GCS use; see `file_io`).
    """
    if invalid_policy not in INVALID_POLICIES:
        raise DatasetError(f"invalid_policy must be one of {INVALID_POLICIES}, got {invalid_policy!r}")
    spec = get_model(model)
    warning = spec.retirement_warning()
    if warning:
        log.warning(warning)
    with SplitWriter(eval_fraction) as splitter:
        result = validate_sources(
            sources,
            model,
            input_column=input_column,
            output_column=output_column,
            sink=splitter,
            storage_client=storage_client,
        )
        _raise_unless_acceptable(result, invalid_policy, max_invalid_fraction)
        n_eval = eval_size_for(spec, splitter.candidates, result.unique, max_eval_examples)
        n_train = result.unique - n_eval
        plan = plan_tuning(
            model,
            n_train,
            epochs=epochs,
            accelerator=accelerator,
            batch_size=batch_size,
            train_steps=train_steps,
            adapter_size=adapter_size,
            max_train_steps=max_train_steps,
            tokens_per_example=mean_tokens_per_example(result.input_tokens, result.output_tokens),
        )
        with gc_paused():
            splitter.finish(n_eval)
        if spec.max_train_file_bytes and splitter.train_bytes > spec.max_train_file_bytes:
            raise PlanError(
                f"{model}: train.jsonl would be {splitter.train_bytes:,} bytes, over the limit of "
                f"{spec.max_train_file_bytes:,}"
            )
        train_uri = file_io.join(output_prefix, TRAIN_FILE)
        eval_uri = file_io.join(output_prefix, EVAL_FILE) if n_eval else None
        files, content_sha256 = splitter.publish(train_uri, eval_uri, storage_client)
    counts = {**result.counts(), "train": n_train, "eval": n_eval}
    report_uri = file_io.join(output_prefix, REPORT_FILE)
    report = build_report(
        result,
        plan,
        counts=counts,
        files=files,
        content_sha256=content_sha256,
        invalid_policy=invalid_policy,
        eval_fraction=eval_fraction,
    )
    write_report(report_uri, report, storage_client)
    log.info("prepared %s: %s", output_prefix, counts)
    return PrepResult(
        train_uri=train_uri,
        eval_uri=eval_uri,
        report_uri=report_uri,
        counts=counts,
        plan=plan,
        content_sha256=content_sha256,
        skipped=[str(p) for p in result.problems],
    )


def _raise_unless_acceptable(result: ValidationResult, policy: str, max_fraction: float) -> None:
    if result.acceptable(policy, max_fraction):
        if result.invalid:
            log.warning("skipping %d invalid examples of %d (policy 'skip')", result.invalid, result.read)
        return
    problems = result.all_problems()
    if result.dataset_problems:
        message = "; ".join(str(p) for p in result.dataset_problems)
    elif policy == "skip":
        message = (
            f"{result.invalid} of {result.read} examples are invalid ({result.invalid_fraction:.2%}), "
            f"over the allowed {max_fraction:.2%}"
        )
    else:
        message = f"{result.invalid} of {result.read} examples are invalid"
    if result.unrecorded_problems:
        problems.append(f"... and {result.unrecorded_problems} more problems not listed")
    raise DatasetError(f"dataset is not valid for {result.model}: {message}", problems)
