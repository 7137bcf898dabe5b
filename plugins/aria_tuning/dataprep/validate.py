"""Pass one over the sources: parse, check, convert, deduplicate; every problem as `file:line: reason`.

Streaming: memory holds one block of input, the compact digest set (16 bytes per unique
example) and the problems found. Kept examples (converted, with their digests) go to an
optional sink a block at a time (the split writer), so the sources are parsed once.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from aria_tuning.catalog import DataFormat, ModelSpec, get_model
from aria_tuning.dataprep import file_io, palm_blocks
from aria_tuning.dataprep.convert import WRITERS
from aria_tuning.dataprep.csvfile import iter_csv
from aria_tuning.dataprep.digests import digest_of
from aria_tuning.dataprep.input_formats import (
    PARSERS,
    Example,
    ExampleError,
    InputFormat,
    decode_object,
    format_of,
    palm_example,
)
from aria_tuning.dataprep.line_reader import iter_blocks
from aria_tuning.dataprep.results import Problem, ValidationResult
from aria_tuning.dataprep.tokens import estimate_tokens

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)

#: Bytes of JSON one token can take at most: 4 characters each escaped as \u00XX.
_MAX_BYTES_PER_TOKEN = 24
_LINE_OVERHEAD = 64 << 10


class ExampleSink(Protocol):
    """Receives kept examples in input order, a block at a time: converted lines and digests."""

    def write_block(self, lines: list[bytes], digests: list[int]) -> None: ...


class _FileState:
    """The format a JSONL file is in: set by its first valid line."""

    def __init__(self) -> None:
        self.format: InputFormat | None = None
        self.format_line = 0


class Validator:
    """Checks examples against one model's limits; feed it files with `check_file`."""

    def __init__(
        self,
        spec: ModelSpec,
        sources: list[str],
        *,
        input_column: str = "input_text",
        output_column: str = "output_text",
        sink: ExampleSink | None = None,
        expected_bytes: int = 0,
        storage_client: storage.Client | None = None,
    ) -> None:
        self.spec = spec
        self.result = ValidationResult(model=spec.name, sources=sources)
        self.input_column = input_column
        self.output_column = output_column
        self._sink = sink
        self._storage_client = storage_client
        #: Total size of the sources when known: sizes the digest set up front.
        self.expected_bytes = expected_bytes
        #: Kept examples of the current block (converted line, digest), handed to the sink in bulk.
        self._lines: list[bytes] = []
        self._digests: list[int] = []
        self._convert = WRITERS[spec.data_format]
        self._palm_out = spec.data_format is DataFormat.PALM
        total = spec.max_total_tokens or spec.max_input_tokens + spec.max_output_tokens
        #: No valid example's line can be longer than this: longer lines are not even parsed.
        self.max_line_bytes = total * _MAX_BYTES_PER_TOKEN + _LINE_OVERHEAD

    def problem(self, source: str, line: int | None, reason: str) -> None:
        self.result.add_problem(source, line, reason)

    def check_file(self, uri: str) -> None:
        # Problems name the file as people know it: without the `#generation` it was pinned to.
        name = file_io.split_generation(uri)[0]
        with file_io.open_read(uri, self._storage_client) as stream:
            if name.lower().endswith(".csv"):
                self._check_csv(name, stream)
            else:
                self._check_jsonl(name, stream)
        self._flush()

    def _flush(self) -> None:
        if self._sink is not None and self._lines:
            self._sink.write_block(self._lines, self._digests)
        self._lines = []
        self._digests = []

    def _check_csv(self, uri: str, stream: BinaryIO) -> None:
        self.result.formats[uri] = InputFormat.CSV
        for lineno, item in iter_csv(stream, self.max_line_bytes, self.input_column, self.output_column):
            self.result.read += 1
            if isinstance(item, ExampleError):
                self.problem(uri, lineno, str(item))
            else:
                self.accept(uri, lineno, item)
            if len(self._lines) >= 4096:
                self._flush()

    def _check_jsonl(self, uri: str, stream: BinaryIO) -> None:
        state = _FileState()
        for first, lines, clean, terminated in iter_blocks(stream, self.max_line_bytes):
            whole_block = clean and terminated and state.format in (None, InputFormat.PALM)
            if not (whole_block and self._palm_block(uri, first, lines, state)):
                for k, line in enumerate(lines):
                    self._jsonl_line(uri, first + k, line, terminated, state)
            self._flush()

    def _palm_block(self, uri: str, first: int, lines: list[Any], state: _FileState) -> bool:
        """A block of PaLM lines in bulk (see `palm_blocks`); False: use the line-by-line path."""
        decoded = palm_blocks.decode_block(lines)
        if decoded is None:
            return False
        pairs, all_verbatim = decoded
        if state.format is None:
            state.format, state.format_line = InputFormat.PALM, first
            self.result.formats[uri] = InputFormat.PALM
        if self.expected_bytes:  # first block: size the digest set for the whole dataset
            average = (sum(map(len, lines)) + len(lines)) / len(lines)
            self.result.digests.reserve(int(self.expected_bytes / average))
            self.expected_bytes = 0
        self.result.read += len(pairs)
        convert = None if self._palm_out else self._convert
        converted = palm_blocks.convert_block(pairs, self.spec, convert, lines, all_verbatim)
        if converted is None:  # some example has a problem: report each at its line
            for k, pair in enumerate(pairs):
                self.accept_pair(uri, first + k, pair.input_text, pair.output_text, lines[k])
            return True
        self._keep_block(*converted)
        return True

    def _keep_block(
        self, lines: list[bytes], digests: list[int], tokens_in: list[int], tokens_out: list[int]
    ) -> None:
        result = self.result
        duplicates = result.digests.add_many(digests)
        if duplicates:
            dropped = set(duplicates)
            kept = [k for k in range(len(digests)) if k not in dropped]
            lines = [lines[k] for k in kept]
            digests = [digests[k] for k in kept]
            tokens_in = [tokens_in[k] for k in kept]
            tokens_out = [tokens_out[k] for k in kept]
        result.duplicates += len(duplicates)
        result.input_tokens.update(tokens_in)
        result.output_tokens.update(tokens_out)
        self._lines.extend(lines)
        self._digests.extend(digests)

    def _jsonl_line(
        self, uri: str, lineno: int, line: bytes | int, terminated: bool, state: _FileState
    ) -> None:
        if isinstance(line, int):
            self.result.read += 1
            self.problem(uri, lineno, self._too_long(line))
            return
        if not line or line.isspace():
            return
        self.result.read += 1
        try:
            obj = decode_object(line, terminated)
            kind = format_of(obj)
        except ExampleError as exc:
            self.problem(uri, lineno, str(exc))
            return
        if state.format is None:
            state.format, state.format_line = kind, lineno
            self.result.formats[uri] = kind
        elif kind != state.format:
            self.problem(
                uri,
                lineno,
                f"mixed formats: this line is {kind.label} but line {state.format_line} is "
                f"{state.format.label} (one format per file)",
            )
            return
        try:
            example = PARSERS[kind](obj)
        except ExampleError as exc:
            self.problem(uri, lineno, str(exc))
            return
        if kind is InputFormat.PALM:
            source, target = example.turns[0][1], example.turns[1][1]
            self.accept_pair(uri, lineno, source, target, line if len(obj) == 2 else None)
        else:
            self.accept(uri, lineno, example)

    def accept_pair(self, uri: str, lineno: int, source: str, target: str, line: bytes | None) -> None:
        """`accept` for a PaLM line (`line`: its bytes, written verbatim when safe)."""
        if not source or source.isspace() or not target or target.isspace():
            self.problem(uri, lineno, f"empty field {'input_text' if not source.strip() else 'output_text'}")
            return
        if not self._palm_out:
            self.accept(uri, lineno, palm_example(source, target))
            return
        converted = palm_blocks.palm_line(source, target, line)
        self._keep(uri, lineno, converted, estimate_tokens(source), estimate_tokens(target))

    def accept(self, uri: str, lineno: int, example: Example) -> None:
        """Convert, check the token limits and deduplicate one parsed example."""
        try:
            converted = self._convert(example)
        except ExampleError as exc:
            self.problem(uri, lineno, str(exc))
            return
        turns = example.turns
        input_tokens = sum(estimate_tokens(text) for _, text in turns[:-1])
        if example.system is not None:
            input_tokens += estimate_tokens(example.system)
        self._keep(uri, lineno, converted, input_tokens, estimate_tokens(turns[-1][1]))

    def _keep(self, uri: str, lineno: int, converted: bytes, input_tokens: int, output_tokens: int) -> None:
        """Check the token limits, deduplicate, count and keep one converted example."""
        spec = self.spec
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
        self._lines.append(converted)
        self._digests.append(digest)

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


def validate_sources(
    sources: list[str],
    model: str,
    *,
    input_column: str = "input_text",
    output_column: str = "output_text",
    sink: ExampleSink | None = None,
    storage_client: storage.Client | None = None,
) -> ValidationResult:
    """Check every example of every source file for `model`; never raises for bad data.

    `sources` are local files or directories, gs:// objects or gs:// prefixes, read through
    `storage_client` (default: a client for the environment, see `file_io`).
    """
    spec = get_model(model)
    files = file_io.expand(sources, storage_client)
    local_bytes = sum(os.path.getsize(uri) for uri in files if not file_io.is_gcs(uri))
    validator = Validator(
        spec,
        files,
        input_column=input_column,
        output_column=output_column,
        sink=sink,
        expected_bytes=local_bytes,
        storage_client=storage_client,
    )
    with gc_paused():
        for uri in files:
            log.info("validating %s for %s", uri, spec.name)
            validator.check_file(uri)
    return validator.finish()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC in the hot loops: they make millions of short-lived acyclic objects,
    which reference counting frees; the collector would only re-scan the heap (about 25% of the
    run time in measurements). Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
