"""Route templates in Google's HTTP-rule syntax (`/v1/{name=projects/*/locations/*}:verb`).

`Route.match` turns a request path into the template's variables, e.g. {"name": "projects/p/..."};
`Route.expand` goes the other way (a gRPC request's fields into the REST path it stands for).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_VARIABLE = re.compile(r"\{(?P<var>[\w.]+)(?:=(?P<pattern>[^}]+))?\}")
_SEGMENT = "[^/:]+"


def _compile(template: str) -> re.Pattern[str]:
    out, last = [], 0
    for match in _VARIABLE.finditer(template):
        out.append(re.escape(template[last : match.start()]))
        pattern = match["pattern"] or "*"
        regex = "/".join(
            ".+?" if part == "**" else _SEGMENT if part == "*" else re.escape(part)
            for part in pattern.split("/")
        )
        out.append(f"(?P<{match['var'].replace('.', '__')}>{regex})")  # endpoint.name -> endpoint__name
        last = match.end()
    out.append(re.escape(template[last:]))
    return re.compile("^" + "".join(out) + "$")


@dataclass(frozen=True)
class Route:
    """One REST method: HTTP verb, path template (without the /v1 prefix), request type, body,
    and the gRPC service that serves the same method (`rpc` is its method name)."""

    method: str
    template: str
    request: str  # name of the request message in google.cloud.aiplatform_v1(beta1).types
    body: str | None  # request field the JSON body fills; "*" for the whole request
    handler: Callable[..., Any]
    prefixes: tuple[str, ...] = ("v1", "v1beta1")
    service: str = ""  # "PipelineService" (of google.cloud.aiplatform.<version>) or a full gRPC name
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.template))

    @property
    def rpc(self) -> str:
        """The gRPC method name: the request type's, without package and `Request` suffix."""
        return self.request.rpartition(".")[2].removesuffix("Request")

    def grpc_service(self, version: str) -> str:
        """The fully qualified gRPC service, e.g. google.cloud.aiplatform.v1.PipelineService."""
        return self.service if "." in self.service else f"google.cloud.aiplatform.{version}.{self.service}"

    @property
    def variables(self) -> tuple[str, ...]:
        """The template's variables as request field paths, e.g. ("endpoint.name",)."""
        return tuple(match["var"] for match in _VARIABLE.finditer(self.template))

    def expand(self, values: dict[str, str]) -> str:
        """The template with each variable replaced by `values[variable]` (no prefix, no check)."""
        return _VARIABLE.sub(lambda match: values.get(match["var"], ""), self.template)

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """(API version prefix, path variables) when this route serves `method path`."""
        if method != self.method:
            return None
        prefix, _, rest = path.lstrip("/").partition("/")
        if prefix not in self.prefixes:
            return None
        found = self._regex.match(rest)
        if not found:
            return None
        return prefix, {key.replace("__", "."): value for key, value in found.groupdict().items()}
