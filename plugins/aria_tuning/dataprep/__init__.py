"""Dataset preparation: validate, convert, deduplicate, split and plan a tuning run before launch.

Pure library code (no Airflow import): the CLI (`vertex-tuning validate|plan`) and the DAG's
prep task call these functions; the quality gate reads the eval split back with `held_out_examples`.
GCS goes through the `storage_client` the caller passes (see `file_io`).
"""

from aria_tuning.dataprep.held_out import HeldOut, held_out_examples
from aria_tuning.dataprep.input_formats import InputFormat
from aria_tuning.dataprep.plan import DEFAULT_MAX_TRAIN_STEPS, TuningPlan, plan_tuning
from aria_tuning.dataprep.prepare import PrepResult, prepare_dataset
from aria_tuning.dataprep.results import Problem, ValidationResult
from aria_tuning.dataprep.split_rule import count_candidates, eval_size_for
from aria_tuning.dataprep.validate import validate_sources
from aria_tuning.errors import DatasetError, PlanError

__all__ = [
    "DEFAULT_MAX_TRAIN_STEPS",
    "DatasetError",
    "HeldOut",
    "InputFormat",
    "PlanError",
    "PrepResult",
    "Problem",
    "TuningPlan",
    "ValidationResult",
    "count_candidates",
    "eval_size_for",
    "held_out_examples",
    "plan_tuning",
    "prepare_dataset",
    "validate_sources",
]
