"""Resource names and paging, shared by every resource module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vertex_emulator.exceptions import InvalidArgument, NotFound

_NAME = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/(?P<collection>[A-Za-z]+)/(?P<id>[^/@]+)"
    r"(?:@(?P<version>[^/]+))?$"
)
_PARENT = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)$")
#: Resource ids the client may choose (pipelineJobId, endpointId, modelId).
USER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


@dataclass(frozen=True)
class Name:
    project: str
    location: str
    collection: str
    id: str
    version: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def unversioned(self) -> str:
        return f"{self.parent}/{self.collection}/{self.id}"


def parse(name: str, collection: str) -> Name:
    match = _NAME.match(name)
    if match is None or match["collection"] != collection:
        raise NotFound(f"{name!r} is not a {collection} resource name")
    return Name(match["project"], match["location"], collection, match["id"], match["version"])


def check_parent(parent: str) -> str:
    if _PARENT.match(parent) is None:
        raise InvalidArgument(f"{parent!r} is not projects/PROJECT/locations/LOCATION")
    return parent


def camel(path: str) -> str:
    """A snake_case field path (as in an update mask or a filter) in the wire's camelCase."""
    head, *rest = path.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def location_of(parent: str) -> str:
    return parent.split("/")[3]


def paginate(items: list[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
    """One page of `items` and the token of the next (offset tokens, as opaque as Vertex's)."""
    try:
        start = int(page_token) if page_token else 0
    except ValueError as exc:
        raise InvalidArgument(f"invalid page token {page_token!r}") from exc
    size = page_size if page_size > 0 else 100
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")
