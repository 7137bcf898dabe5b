"""Merging the sections of a partial run (`run_all --only N --merge`) into an existing RESULTS.md.

Both documents are the ones `common.render_results` writes: a summary table whose row names start
with their section's number ("2b. CPU per poll"), then "## Machine" and one "## <title>" per section.
The partial run's rows and sections replace those of the same number, or are added after their
nearest neighbour by number; everything else, and the earlier run's machine, stays as it was. A note
under the title says which rows were measured when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MACHINE = "Machine"
_NOTE = re.compile(r"^Merged on .*?: (?P<numbers>[\w, ]+) measured then")


@dataclass
class Document:
    """A RESULTS.md split into what a merge replaces: table rows, sections, and the rest kept as is."""

    head: list[str]  # title and preamble lines, before the table
    header: list[str]  # the table's header and separator
    rows: list[str]
    sections: list[tuple[str, str]]  # (title, body) in order, "Machine" first

    @classmethod
    def parse(cls, text: str) -> Document:
        top, *chunks = re.split(r"^## ", text, flags=re.MULTILINE)
        lines = top.rstrip("\n").split("\n")
        table = next((i for i, line in enumerate(lines) if line.startswith("| Benchmark |")), None)
        if table is None:
            raise ValueError("RESULTS.md: no summary table (a '| Benchmark |' header) before the sections")
        sections = []
        for chunk in chunks:
            title, _, body = chunk.partition("\n")
            sections.append((title.strip(), body.strip("\n")))
        return cls(lines[:table], lines[table : table + 2], [r for r in lines[table + 2 :] if r], sections)

    def render(self) -> str:
        lines = [*self.head, *self.header, *self.rows]
        for title, body in self.sections:
            lines += ["", f"## {title}", "", body]
        return "\n".join(lines) + "\n"


def number(title: str) -> str:
    """A section's or row's number: "2b" of "2b. Waiting at scale over gRPC" ("" when it has none)."""
    match = re.match(r"^\|? ?(\d+[a-z]?)\. ", title)
    return match.group(1) if match else ""


def _position(numbers: Sequence[str], new: str) -> int:
    """Where an item numbered `new` goes among items numbered `numbers`: after the last one not above it."""
    key = _sort_key(new)
    last = -1
    for index, existing in enumerate(numbers):
        if existing and _sort_key(existing) <= key:
            last = index
    return last + 1 if last >= 0 else len(numbers)


def _sort_key(numbered: str) -> tuple[int, str]:
    digits = re.match(r"\d+", numbered)
    return (int(digits.group()) if digits else 0, numbered[len(digits.group()) if digits else 0 :])


def merge(existing: str, partial: str, measured_on: str, load: str) -> str:
    """`existing` with the rows and sections of `partial` (both as render_results writes them)."""
    old, new = Document.parse(existing), Document.parse(partial)
    replaced = [title for title, _ in new.sections if title != MACHINE]
    numbers = {number(title) for title in replaced}
    if "" in numbers:
        raise ValueError(f"cannot merge sections without a number: {replaced}")
    for title, body in new.sections:
        if title == MACHINE:
            continue
        section_number = number(title)
        kept = [row for row in old.rows if number(row) != section_number]
        at = _position([number(row) for row in kept], section_number)
        fresh = [row for row in new.rows if number(row) == section_number]
        old.rows = kept[:at] + fresh + kept[at:]
        same = [i for i, (t, _) in enumerate(old.sections) if number(t) == section_number]
        if same:
            old.sections[same[0]] = (title, body)
        else:
            at = _position([number(t) for t, _ in old.sections], section_number)
            old.sections.insert(max(at, 1), (title, body))  # never before "## Machine"
    listed = sorted(numbers, key=_sort_key)
    note = (
        f"Merged on {measured_on}: {', '.join(listed)} measured then, in a run of only those "
        f"(`python -m bench.run_all --only {','.join(listed)} --merge`, load average at its start {load}); "
        "every other row and section, and the machine below, are from the run described above."
    )
    old.head = [line for line in old.head if not _same_note(line, numbers)]
    while old.head and not old.head[-1]:
        old.head.pop()
    old.head += [note, ""]
    return old.render()


def _same_note(line: str, numbers: set[str]) -> bool:
    """A previous merge note about exactly these sections, superseded by the new one."""
    match = _NOTE.match(line)
    if match is None:
        return False
    return {n.strip() for n in match["numbers"].split(",")} == numbers
