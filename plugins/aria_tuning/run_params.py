"""What a task runs with, said plainly: each param it uses, where its value came from, the bound it sits on.

Airflow's trigger form lowers a number typed above a param's `maximum` to the maximum (and raises one below
its `minimum`) without a word, and the run goes ahead with a value nobody chose. The task can not see what
was typed, only what arrived (`dag_run.conf`): a value sitting exactly on a bound is the trace, and the
task log says so. Pure, apart from `log_params_used_by`, the task callback built on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

log = logging.getLogger("airflow.task.aria_params")

_BOUNDS = (
    ("maximum", "maximum", "above"),
    ("exclusiveMaximum", "exclusive maximum", "above"),
    ("minimum", "minimum", "below"),
    ("exclusiveMinimum", "exclusive minimum", "below"),
    ("maxLength", "maximum length", "longer"),
)


def describe(
    name: str, value: Any, schema: Mapping[str, Any], conf: Mapping[str, Any], default: Any = None
) -> str:
    """One log line: `name` = value, whether the run's conf chose it, and the bound it hit, if any."""
    # The trigger form sends every param, so a value in the conf may still be the default.
    origin = "set for this run" if name in conf and conf[name] != default else "the param's default"
    line = f"Runs with {name} = {value!r} ({origin})"
    for key, label, side in _BOUNDS:
        bound = schema.get(key)
        if bound is None or isinstance(value, bool) or value is None:
            continue
        measured = len(value) if key == "maxLength" and isinstance(value, str) else value
        if isinstance(measured, int | float) and measured == bound:
            line += (
                f": exactly the form's {label} ({bound}). A number typed {side} it into the trigger form "
                f"is changed to {bound} without a message, so check that {value!r} is what you meant; "
                "the REST API and the CLI refuse out-of-range values instead"
            )
    return line


def describe_all(
    names: Sequence[str],
    values: Mapping[str, Any],
    schemas: Mapping[str, Mapping[str, Any]],
    conf: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """`describe` for each of `names` that has a value."""
    sent, known = conf or {}, defaults or {}
    return [describe(n, values[n], schemas.get(n, {}), sent, known.get(n)) for n in names if n in values]


#: `params.epochs` or `params["epochs"]` inside a template.
_REFERENCE = re.compile(r"""params\.(\w+)|params\[['"](\w+)['"]\]""")


def params_in_templates(tasks: Iterable[Any]) -> dict[str, list[str]]:
    """Task id -> the params its templated fields refer to (read at parse time, before rendering)."""
    found: dict[str, list[str]] = {}
    for task in tasks:
        names: list[str] = []
        for field in task.template_fields:
            for text in _strings(getattr(task, field, None)):
                for match in _REFERENCE.finditer(text):
                    name = match.group(1) or match.group(2)
                    if name not in names:
                        names.append(name)
        if names:
            found[task.task_id] = names
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def add_examples(params: Mapping[str, Any]) -> None:
    """End each Param's description with an example of a valid value, unless it gives one already:
    its default (the form shows a bad value's JSON-schema error, never what a good one looks like)."""
    for param in params.values():
        description = param.description or ""
        if "for example" in description.lower() or not param.has_value:
            continue
        example = param.value
        if isinstance(example, bool):
            shown: Any = "on" if example else "off"
        else:
            shown = ", ".join(map(str, example)) if isinstance(example, list) else example
        param.description = f"{description.rstrip()} For example {shown} (the default).".lstrip()


def log_params_used_by(
    used_by: Mapping[str, Sequence[str]],
    schemas: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Any], None]:
    """An `on_execute_callback` logging, for the task about to run, each param it uses (`used_by`:
    task id -> param names), from the run's params and `dag_run.conf`."""

    def log_params(context: Any) -> None:
        names = used_by.get(context["ti"].task_id, ())
        if not names:
            return
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        for line in describe_all(names, context["params"], schemas, conf, defaults):
            log.info("%s", line)

    return log_params
