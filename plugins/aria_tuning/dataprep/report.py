"""`report.json`: what went in, what came out, the plan, and the hash of the prepared files."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aria_tuning.dataprep import file_io
from aria_tuning.dataprep.plan import TuningPlan
from aria_tuning.dataprep.results import ValidationResult

if TYPE_CHECKING:
    from google.cloud import storage

REPORT_VERSION = 1


def build_report(
    result: ValidationResult,
    plan: TuningPlan,
    *,
    counts: dict[str, int],
    files: dict[str, dict[str, Any]],
    content_sha256: str,
    invalid_policy: str,
    eval_fraction: float,
) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "model": result.model,
        "sources": result.sources,
        "source_formats": result.formats,
        "counts": counts,
        "tokens": {
            "method": "ceil(ascii_chars / 4) + non_ascii_chars per text (aria_tuning.dataprep.tokens)",
            "input": result.input_tokens.summary(),
            "output": result.output_tokens.summary(),
        },
        "invalid_policy": invalid_policy,
        "skipped": [str(p) for p in result.problems],
        "skipped_not_listed": result.unrecorded_problems,
        "split": {
            "method": "eval when the example's SHA-256 digest (first 64 bits) < eval_fraction x 2^64; "
            "over a cap, the smallest digests stay in eval",
            "eval_fraction": eval_fraction,
        },
        "dedup": "exact duplicates: byte-identical PaLM lines, or identical converted examples",
        "plan": plan.to_dict(),
        "files": files,
        "content_sha256": content_sha256,
    }


def write_report(uri: str, report: dict[str, Any], storage_client: storage.Client | None = None) -> None:
    with file_io.open_write(uri, storage_client) as out:
        out.write(json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
