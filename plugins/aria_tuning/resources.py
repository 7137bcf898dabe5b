"""Vertex AI resource names, label values and Google Cloud console URLs: string rules, nothing else.

No Airflow and no Google import, so links, operators and hooks share them and tests need no server.
"""

from __future__ import annotations

import re

from aria_tuning.catalog import TuningMethod
from aria_tuning.errors import ConfigurationError

CONSOLE = "https://console.cloud.google.com"


def label_value(value: object) -> str:
    """A Vertex label value: lowercase letters, digits, `_` and `-`, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]+", "-", str(value).lower()).strip("-")[:63]


def label_key(key: object) -> str:
    """A Vertex label key: like a value, but non-empty and starting with a lowercase letter.

    Google's label rules (cloud.google.com/resource-manager/docs/labels-overview#requirements): keys
    are 1-63 characters of lowercase letters, digits, `_` and `-`, and start with a lowercase letter.
    """
    value = label_value(key)
    if not value:
        raise ConfigurationError(f"label key {key!r} has no letter or digit Vertex accepts")
    return value if value[0].isalpha() else ("k-" + value)[:63]


def resource_id(name: str) -> str:
    """`projects/p/locations/l/models/123@2` -> `123`."""
    return name.rstrip("/").rsplit("/", 1)[-1].split("@", 1)[0]


def resource_region(name: str) -> str:
    """The location segment of a Vertex resource name."""
    match = re.search(r"/locations/([^/]+)", name)
    if not match:
        raise ConfigurationError(f"{name!r} is not a regional Vertex AI resource name")
    return match.group(1)


def resource_project(name: str) -> str:
    match = re.match(r"projects/([^/]+)", name)
    if not match:
        raise ConfigurationError(f"{name!r} is not a Vertex AI resource name")
    return match.group(1)


def location_of(name: str) -> str:
    """`projects/p/locations/l/...` -> `projects/p/locations/l`."""
    return f"projects/{resource_project(name)}/locations/{resource_region(name)}"


def model_version_name(name: object) -> str:
    """Check `projects/.../models/ID@VERSION`, the name of one model version; return it."""
    text = str(name or "")
    if not text.startswith("projects/") or "/models/" not in text or "@" not in text:
        raise ConfigurationError(f"model_version must be projects/.../models/ID@VERSION, got {name!r}")
    return text


def job_console_url(job_name: str, method: TuningMethod | str) -> str:
    project, region, job = resource_project(job_name), resource_region(job_name), resource_id(job_name)
    if TuningMethod(method) is TuningMethod.PIPELINE:
        return f"{CONSOLE}/vertex-ai/locations/{region}/pipelines/runs/{job}?project={project}"
    return (
        f"{CONSOLE}/vertex-ai/generative/language/locations/{region}/tuning/tuningJob/{job}?project={project}"
    )


def model_console_url(model_name: str) -> str:
    project, region = resource_project(model_name), resource_region(model_name)
    version = model_name.split("@", 1)[1] if "@" in model_name else "default"
    return (
        f"{CONSOLE}/vertex-ai/models/locations/{region}/models/{resource_id(model_name)}"
        f"/versions/{version}?project={project}"
    )


def endpoint_console_url(endpoint_name: str) -> str:
    project, region = resource_project(endpoint_name), resource_region(endpoint_name)
    return f"{CONSOLE}/vertex-ai/locations/{region}/endpoints/{resource_id(endpoint_name)}?project={project}"


def gcs_browser_url(uri: str) -> str:
    """`gs://bucket/path` as the Cloud Storage URL a signed-in browser opens (HTML renders there)."""
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return f"https://storage.cloud.google.com/{bucket}/{path}"
