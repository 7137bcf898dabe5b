"""Dataset preparation: validate, convert, deduplicate, split and plan a tuning run before launch.

Pure library code (no Airflow import): the CLI (`vertex-tuning validate|plan`) and the DAG's
prep task call these functions.
"""

from aria_tuning.dataprep.plan import DEFAULT_MAX_TRAIN_STEPS, TuningPlan, plan_tuning
from aria_tuning.dataprep.prepare import PrepResult, prepare_dataset
from aria_tuning.dataprep.results import Problem, ValidationResult
from aria_tuning.dataprep.validate import validate_sources
from aria_tuning.errors import DatasetError, PlanError

__all__ = [
    "DEFAULT_MAX_TRAIN_STEPS",
    "DatasetError",
    "PlanError",
    "PrepResult",
    "Problem",
    "TuningPlan",
    "ValidationResult",
    "plan_tuning",
    "prepare_dataset",
    "validate_sources",
]
