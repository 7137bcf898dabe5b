"""Partial responses: Google's `fields` system parameter (query) and `X-Goog-FieldMask` header.

`name,state,jobDetail.taskDetails.taskName` keeps only those paths; repeated fields are filtered
element-wise; `a(b,c)` is the same as `a.b,a.c`; snake_case segments match camelCase keys.
"""

from __future__ import annotations

from typing import Any

from vertex_emulator.exceptions import InvalidArgument

Tree = dict[str, "Tree | None"]


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def parse(spec: str) -> Tree:
    """The field selector as a tree of kept keys (None: keep the whole value)."""
    tree: Tree = {}
    position = _parse_list(spec.replace(" ", ""), 0, tree)
    if position != len(spec.replace(" ", "")):
        raise InvalidArgument(f"invalid field selector {spec!r} at position {position}")
    return tree


def _parse_list(spec: str, i: int, tree: Tree) -> int:
    while i < len(spec):
        start = i
        while i < len(spec) and spec[i] not in ",()":
            i += 1
        path = [_camel(part) for part in spec[start:i].split(".") if part]
        if not path:
            raise InvalidArgument(f"invalid field selector {spec!r} at position {start}")
        node = tree
        for part in path[:-1]:
            child = node.get(part, {})
            node[part] = child if child is not None else None
            if child is None:
                break
            node = child
        else:
            leaf = path[-1]
            if i < len(spec) and spec[i] == "(":
                sub = node.get(leaf) or {}
                i = _parse_list(spec, i + 1, sub)
                if i >= len(spec) or spec[i] != ")":
                    raise InvalidArgument(f"unbalanced parentheses in field selector {spec!r}")
                i += 1
                node[leaf] = sub
            else:
                node[leaf] = None
        if i < len(spec) and spec[i] == ")":
            return i
        if i < len(spec) and spec[i] == ",":
            i += 1
    return i


def apply(value: Any, tree: Tree | None) -> Any:
    if tree is None or "*" in tree:
        return value
    if isinstance(value, list):
        return [apply(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: apply(value[key], sub) for key, sub in tree.items() if key in value}
    return value
