"""The trigger form as a person reads it: every param titled and described with an example of a valid
value, the base-model list from the catalog, and each task logging the params it uses."""

from __future__ import annotations

import re
from typing import Any

from aria_tuning.catalog import DEFAULT_MODEL, model_names


def _params(dag: Any) -> dict[str, Any]:
    return {name: dag.params.get_param(name) for name in dag.params}


def test_every_param_has_a_title_and_a_description_with_an_example(dag: Any) -> None:
    for name, param in _params(dag).items():
        assert param.schema.get("title"), f"{name} has no title"
        assert re.search(r"for example \S", param.description or "", re.I), f"{name}: {param.description!r}"


def test_the_base_model_list_is_the_catalog_and_its_description_gives_time_and_cost(dag: Any) -> None:
    base = dag.params.get_param("base_model")
    assert base.schema["enum"] == model_names() and base.value == DEFAULT_MODEL
    assert "Time and money" in base.description and "per 1M training tokens" in base.description


def test_the_dataset_uri_description_shows_a_uri_its_pattern_accepts(dag: Any) -> None:
    param = dag.params.get_param("dataset_uri")
    examples = [uri for uri in re.findall(r"gs://\S+/", param.description) if "<" not in uri]
    assert examples and all(re.match(param.schema["pattern"], uri) for uri in examples), examples


def test_each_task_logs_the_params_it_uses(dag: Any) -> None:
    import importlib.util

    from tests.support.airflow import REPO

    spec = importlib.util.spec_from_file_location(
        "aria_text_tuning_form", REPO / "dags" / "aria_text_tuning.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    used_by = module.PARAMS_USED_BY
    assert "epochs" in used_by["prepare_dataset"] and "dataset_uri" in used_by["resolve_dataset_version"]
    assert {"learning_rate_multiplier", "tuned_model_name"} <= set(used_by["tune"])
    assert "endpoint_name" in used_by["deploy_model"]
    for task in dag.tasks:
        assert task.on_execute_callback, f"{task.task_id} logs no params"
