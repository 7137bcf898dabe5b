"""What a task logs about the params it runs with: where each value came from, and a bound it sits on."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from aria_tuning.run_params import describe, log_params_used_by

EPOCHS = {"type": "integer", "minimum": 1, "maximum": 20}


@pytest.mark.parametrize(
    ("value", "bound"), [(20, "exactly the form's maximum (20)"), (1, "exactly the form's minimum (1)")]
)
def test_a_value_on_a_bound_is_called_out_with_what_the_form_does(value: int, bound: str) -> None:
    line = describe("epochs", value, EPOCHS, {"epochs": value})
    assert line.startswith(f"Runs with epochs = {value} (set for this run): {bound}")
    assert "without a message" in line and "refuse out-of-range values" in line


def test_a_value_inside_the_bounds_is_only_stated() -> None:
    assert describe("epochs", 3, EPOCHS, {}) == "Runs with epochs = 3 (the param's default)"


@pytest.mark.parametrize(
    ("name", "value", "schema", "flagged"),
    [
        ("learning_rate_multiplier", 10, {"exclusiveMinimum": 0, "maximum": 10}, True),
        ("learning_rate_multiplier", 0.5, {"exclusiveMinimum": 0, "maximum": 10}, False),
        ("tuned_model_name", "x" * 128, {"minLength": 1, "maxLength": 128}, True),
        ("dry_run", True, {"type": "boolean"}, False),
        ("train_steps", None, {"minimum": 1, "maximum": 20000}, False),
    ],
)
def test_bounds_of_every_kind(name: str, value: object, schema: dict, flagged: bool) -> None:
    assert ("exactly the form's" in describe(name, value, schema, {name: value})) is flagged


@dataclass
class _TI:
    task_id: str


@dataclass
class _DagRun:
    conf: dict


def test_the_callback_logs_only_the_params_of_the_running_task(caplog: pytest.LogCaptureFixture) -> None:
    callback = log_params_used_by({"prepare_dataset": ["epochs", "batch_size"]}, {"epochs": EPOCHS})
    context = {
        "ti": _TI("prepare_dataset"),
        "params": {"epochs": 20, "batch_size": None, "dry_run": False},
        "dag_run": _DagRun({"epochs": 20}),
    }
    with caplog.at_level(logging.INFO, logger="airflow.task.aria_params"):
        callback(context)
        callback({**context, "ti": _TI("tune")})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "epochs = 20 (set for this run): exactly the form's maximum" in lines[0]
    assert lines[1] == "Runs with batch_size = None (the param's default)"


def test_a_default_the_form_sent_along_is_still_the_default() -> None:
    assert (
        describe("epochs", 3, EPOCHS, {"epochs": 3}, default=3)
        == "Runs with epochs = 3 (the param's default)"
    )
    assert (
        describe("epochs", 4, EPOCHS, {"epochs": 4}, default=3) == "Runs with epochs = 4 (set for this run)"
    )
