"""`prepare_dataset`: raw files -> validated, converted, deduplicated, split and planned.

Pass one (validate) parses every source once and spools converted examples to a local temp
file; nothing is written to the output before the data and the plan are known to be good.
Pass two streams the spool into train.jsonl / eval.jsonl, then report.json is written last.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from aria_tuning.catalog import get_model
from aria_tuning.dataprep import sources as io
from aria_tuning.dataprep.plan import DEFAULT_MAX_TRAIN_STEPS, TuningPlan, plan_tuning
from aria_tuning.dataprep.report import build_report, write_report
from aria_tuning.dataprep.split import eval_size, eval_threshold
from aria_tuning.dataprep.validate import ValidationResult, validate_sources
from aria_tuning.errors import DatasetError, PlanError

log = logging.getLogger(__name__)

TRAIN_FILE, EVAL_FILE, REPORT_FILE = "train.jsonl", "eval.jsonl", "report.json"
INVALID_POLICIES = ("fail", "skip")
_FLUSH_BYTES = 1 << 20


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


class _HashingSink:
    """Batches small writes into 1 MiB blocks and hashes what it writes."""

    def __init__(self, raw: BinaryIO, *hashes: Any) -> None:
        self.raw, self.hashes = raw, (hashlib.sha256(), *hashes)
        self.pending: list[bytes] = []
        self.pending_bytes = self.bytes = self.lines = 0

    def write(self, line: bytes) -> None:
        self.pending.append(line)
        self.pending_bytes += len(line)
        self.lines += 1
        if self.pending_bytes >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        block = b"".join(self.pending)
        for digest in self.hashes:
            digest.update(block)
        self.raw.write(block)
        self.bytes += len(block)
        self.pending.clear()
        self.pending_bytes = 0

    @property
    def sha256(self) -> str:
        return str(self.hashes[0].hexdigest())


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
) -> PrepResult:
    """Validate, convert, deduplicate, split and plan; write train/eval/report under `output_prefix`.

    Raises DatasetError (with every problem as `file:line: reason`) or PlanError before writing
    anything when the data is invalid under `invalid_policy` or the plan is over its limits.
    """
    if invalid_policy not in INVALID_POLICIES:
        raise DatasetError(f"invalid_policy must be one of {INVALID_POLICIES}, got {invalid_policy!r}")
    spec = get_model(model)
    warning = spec.retirement_warning()
    if warning:
        log.warning(warning)
    with tempfile.TemporaryFile(prefix="aria-prep-") as spool:
        result = validate_sources(
            sources, model, input_column=input_column, output_column=output_column, spool=spool
        )
        _raise_unless_acceptable(result, invalid_policy, max_invalid_fraction)
        cap = min(c for c in (spec.max_eval_examples, max_eval_examples, result.unique) if c is not None)
        n_eval = eval_size(result.unique, eval_fraction, cap, spec.min_examples)
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
        )
        threshold = eval_threshold(result.digests, n_eval)
        if spec.max_train_file_bytes and result.unique_bytes > spec.max_train_file_bytes:
            _check_train_bytes(spool, threshold, spec.max_train_file_bytes, model)
        spool.seek(0)
        train_uri = io.join(output_prefix, TRAIN_FILE)
        eval_uri = io.join(output_prefix, EVAL_FILE) if n_eval else None
        content = hashlib.sha256()
        files = _write_split(spool, threshold, train_uri, eval_uri, content)
    counts = {**result.counts(), "train": files[TRAIN_FILE]["examples"], "eval": n_eval}
    report_uri = io.join(output_prefix, REPORT_FILE)
    report = build_report(
        result,
        plan,
        counts=counts,
        files=files,
        content_sha256=content.hexdigest(),
        invalid_policy=invalid_policy,
        eval_fraction=eval_fraction,
    )
    write_report(report_uri, report)
    log.info("prepared %s: %s", output_prefix, counts)
    return PrepResult(
        train_uri=train_uri,
        eval_uri=eval_uri,
        report_uri=report_uri,
        counts=counts,
        plan=plan,
        content_sha256=content.hexdigest(),
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


def _check_train_bytes(spool: BinaryIO, threshold: int, limit: int, model: str) -> None:
    spool.seek(0)
    train_bytes = sum(len(line) - 16 for line in spool if int(line[:16], 16) > threshold)
    if train_bytes > limit:
        raise PlanError(f"{model}: train.jsonl would be {train_bytes:,} bytes, over the limit of {limit:,}")


def _write_split(
    spool: BinaryIO, threshold: int, train_uri: str, eval_uri: str | None, content: Any
) -> dict[str, dict[str, Any]]:
    """Stream spooled lines ("<16 hex digest><json>\\n") to train and eval, in input order."""
    with io.open_write(train_uri) as train_raw:
        train = _HashingSink(train_raw, content)
        evals: list[bytes] = []
        eval_tmp: BinaryIO | None = None
        if eval_uri is not None:
            eval_tmp = tempfile.TemporaryFile(prefix="aria-eval-")  # noqa: SIM115 - closed below
        try:
            write_train = train.write
            for line in spool:
                if int(line[:16], 16) > threshold:
                    write_train(line[16:])
                else:
                    evals.append(line[16:])
                    if len(evals) >= 4096 and eval_tmp is not None:
                        eval_tmp.write(b"".join(evals))
                        evals.clear()
            train.flush()
            files = {
                TRAIN_FILE: {
                    "uri": train_uri,
                    "examples": train.lines,
                    "bytes": train.bytes,
                    "sha256": train.sha256,
                }
            }
            if eval_uri is not None and eval_tmp is not None:
                eval_tmp.write(b"".join(evals))
                eval_tmp.seek(0)
                files[EVAL_FILE] = _copy_eval(eval_tmp, eval_uri, content)
        finally:
            if eval_tmp is not None:
                eval_tmp.close()
    return files


def _copy_eval(eval_tmp: BinaryIO, eval_uri: str, content: Any) -> dict[str, Any]:
    with io.open_write(eval_uri) as eval_raw:
        sink = _HashingSink(eval_raw, content)
        for line in eval_tmp:
            sink.write(line)
        sink.flush()
    return {"uri": eval_uri, "examples": sink.lines, "bytes": sink.bytes, "sha256": sink.sha256}
