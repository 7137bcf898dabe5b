"""Pass one over the sources: parse, check, convert, deduplicate; every problem as `file:line: reason`.

Streaming: memory holds one block of input, the compact digest set (16 bytes per unique
example) and the problems found. Converted examples go to an optional spool file, which the
split step reads back, so the sources are parsed once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from aria_tuning.catalog import ModelSpec, get_model
from aria_tuning.dataprep import sources as io
from aria_tuning.dataprep.convert import WRITERS
from aria_tuning.dataprep.csvfile import iter_csv
from aria_tuning.dataprep.digests import DigestSet, digest_of
from aria_tuning.dataprep.formats import LABELS, PARSERS, Example, ExampleError, detect
from aria_tuning.dataprep.lines import iter_lines
from aria_tuning.dataprep.tokens import TokenHistogram, estimate_tokens

log = logging.getLogger(__name__)

#: Problems kept in memory (and in the report); beyond that they are only counted.
MAX_RECORDED_PROBLEMS = 100_000
#: Bytes of JSON one token can take at most: 4 characters each escaped as \u00XX.
_MAX_BYTES_PER_TOKEN = 24
_LINE_OVERHEAD = 64 << 10

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Problem:
    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass
class ValidationResult:
    """What pass one found: counts, problems, token statistics and the kept examples' digests."""

    model: str
    sources: list[str]
    read: int = 0
    invalid: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    unrecorded_problems: int = 0
    dataset_problems: list[Problem] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    input_tokens: TokenHistogram = field(default_factory=TokenHistogram)
    output_tokens: TokenHistogram = field(default_factory=TokenHistogram)
    digests: DigestSet = field(default_factory=DigestSet)
    unique_bytes: int = 0

    @property
    def valid(self) -> int:
        return self.read - self.invalid

    @property
    def unique(self) -> int:
        return self.valid - self.duplicates

    @property
    def invalid_fraction(self) -> float:
        return self.invalid / self.read if self.read else 0.0

    def all_problems(self) -> list[str]:
        return [str(p) for p in (*self.dataset_problems, *self.problems)]

    def acceptable(self, invalid_policy: str = "fail", max_invalid_fraction: float = 0.0) -> bool:
        """Whether prep may go on: no dataset-level problem, and invalid lines within the policy."""
        if self.dataset_problems:
            return False
        if not self.invalid:
            return True
        return invalid_policy == "skip" and self.invalid_fraction <= max_invalid_fraction

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
        }


class Validator:
    """Checks examples against one model's limits; feed it files with `check_file`."""

    def __init__(
        self,
        spec: ModelSpec,
        sources: list[str],
        *,
        input_column: str = "input_text",
        output_column: str = "output_text",
        spool: BinaryIO | None = None,
    ) -> None:
        self.spec = spec
        self.result = ValidationResult(model=spec.name, sources=sources)
        self.input_column = input_column
        self.output_column = output_column
        self._spool = spool
        self._convert = WRITERS[spec.data_format]
        total = spec.max_total_tokens or spec.max_input_tokens + spec.max_output_tokens
        #: No valid example's line can be longer than this: longer lines are not even parsed.
        self.max_line_bytes = total * _MAX_BYTES_PER_TOKEN + _LINE_OVERHEAD

    def problem(self, source: str, line: int | None, reason: str) -> None:
        self.result.invalid += 1
        if len(self.result.problems) < MAX_RECORDED_PROBLEMS:
            self.result.problems.append(Problem(source, line, reason))
        else:
            self.result.unrecorded_problems += 1

    def check_file(self, uri: str) -> None:
        with io.open_read(uri) as stream:
            if uri.lower().endswith(".csv"):
                self._check_csv(uri, stream)
            else:
                self._check_jsonl(uri, stream)

    def _check_csv(self, uri: str, stream: BinaryIO) -> None:
        self.result.formats[uri] = "csv"
        for lineno, item in iter_csv(stream, self.max_line_bytes, self.input_column, self.output_column):
            self.result.read += 1
            if isinstance(item, ExampleError):
                self.problem(uri, lineno, str(item))
            else:
                self.accept(uri, lineno, item)

    def _check_jsonl(self, uri: str, stream: BinaryIO) -> None:
        file_format: str | None = None
        format_line = 0
        result = self.result
        for lineno, line, size, terminated in iter_lines(stream, self.max_line_bytes):
            if line is None:
                result.read += 1
                self.problem(uri, lineno, self._too_long(size))
                continue
            if not line or line.isspace():
                continue
            result.read += 1
            try:
                obj = _decode(line)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                self.problem(uri, lineno, _json_reason(line, exc, terminated))
                continue
            if type(obj) is not dict:
                self.problem(uri, lineno, f"expected a JSON object, got {_json_kind(obj)}")
                continue
            kind = detect(obj)
            if kind is None:
                self.problem(uri, lineno, _unknown_format(obj))
                continue
            if file_format is None:
                file_format, format_line = kind, lineno
                result.formats[uri] = kind
            elif kind != file_format:
                self.problem(
                    uri,
                    lineno,
                    f"mixed formats: this line is {LABELS[kind]} but line {format_line} is "
                    f"{LABELS[file_format]} (one format per file)",
                )
                continue
            try:
                example = PARSERS[kind](obj)
            except ExampleError as exc:
                self.problem(uri, lineno, str(exc))
                continue
            self.accept(uri, lineno, example)

    def accept(self, uri: str, lineno: int, example: Example) -> None:
        """Convert, check the token limits and deduplicate one parsed example."""
        try:
            converted = self._convert(example)
        except ExampleError as exc:
            self.problem(uri, lineno, str(exc))
            return
        spec = self.spec
        turns = example.turns
        output_tokens = estimate_tokens(turns[-1][1])
        input_tokens = sum(estimate_tokens(text) for _, text in turns[:-1])
        if example.system is not None:
            input_tokens += estimate_tokens(example.system)
        if input_tokens > spec.max_input_tokens:
            self.problem(uri, lineno, _over("input", input_tokens, spec.max_input_tokens, spec.name))
            return
        if output_tokens > spec.max_output_tokens:
            self.problem(uri, lineno, _over("output", output_tokens, spec.max_output_tokens, spec.name))
            return
        if spec.max_total_tokens and input_tokens + output_tokens > spec.max_total_tokens:
            total = input_tokens + output_tokens
            self.problem(uri, lineno, _over("input + output", total, spec.max_total_tokens, spec.name))
            return
        digest = digest_of(converted)
        result = self.result
        if not result.digests.add(digest):
            result.duplicates += 1
            return
        result.input_tokens.add(input_tokens)
        result.output_tokens.add(output_tokens)
        result.unique_bytes += len(converted) + 1
        if self._spool is not None:
            self._spool.write(b"%016x%b\n" % (digest, converted))

    def _too_long(self, size: int) -> str:
        return (
            f"line is {size:,} bytes: over the {self.spec.name} token limits whatever it holds "
            f"(no valid example exceeds {self.max_line_bytes:,} bytes)"
        )

    def finish(self) -> ValidationResult:
        """Add the dataset-level problems (empty, too few examples) and return the result."""
        result = self.result
        where = _sources_label(result.sources)
        if result.read == 0:
            result.dataset_problems.append(Problem(where, None, "empty dataset: no examples found"))
        elif result.unique < self.spec.min_examples:
            result.dataset_problems.append(
                Problem(
                    where,
                    None,
                    f"fewer examples than the minimum: {result.unique} valid unique examples, "
                    f"{self.spec.name} needs at least {self.spec.min_examples}",
                )
            )
        return result


def _sources_label(sources: list[str]) -> str:
    if len(sources) <= 2:
        return ", ".join(sources) or "(no sources)"
    return f"{sources[0]} (and {len(sources) - 1} more files)"


def _over(what: str, tokens: int, limit: int, model: str) -> str:
    return f"{what} is about {tokens:,} tokens, over the {model} limit of {limit:,} (estimated)"


def _json_kind(obj: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(obj), "null"
    )


def _unknown_format(obj: dict[str, Any]) -> str:
    keys = ", ".join(sorted(obj)[:6]) or "none"
    return (
        "missing fields: expected input_text/output_text (PaLM), contents (Gemini) or messages "
        f"(chat); the keys are: {keys}"
    )


def _json_reason(line: bytes, exc: Exception, terminated: bool) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8: byte 0x{line[bad.start]:02x} at column {bad.start + 1}"
    reason = f"invalid JSON: {exc}"
    if not terminated:
        reason += " (the last line has no newline: is the file truncated?)"
    return reason


def validate_sources(
    sources: list[str],
    model: str,
    *,
    input_column: str = "input_text",
    output_column: str = "output_text",
    spool: BinaryIO | None = None,
) -> ValidationResult:
    """Check every example of every source file for `model`; never raises for bad data.

    `sources` are local files or directories, gs:// objects or gs:// prefixes.
    """
    spec = get_model(model)
    files = io.expand(sources)
    validator = Validator(spec, files, input_column=input_column, output_column=output_column, spool=spool)
    for uri in files:
        log.info("validating %s for %s", uri, spec.name)
        validator.check_file(uri)
    return validator.finish()
