"""Pass one, problem by problem: exact reasons at exact lines on both paths (block and line by line),
the limits at their edges, duplicates, formats, what the sink receives and the dataset-level checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.catalog import get_model
from aria_tuning.dataprep import validate_sources
from aria_tuning.dataprep.input_formats import InputFormat
from aria_tuning.dataprep.results import Problem
from aria_tuning.dataprep.validate import Validator

from tests.aria_tuning.dataprep.conftest import palm_line

WriteLines = Callable[..., Path]


def palm(source: str, target: str) -> str:
    return json.dumps({"input_text": source, "output_text": target})


def gemini(*turns: str, system: str | None = None) -> str:
    roles = ("user", "model")
    record: dict = {"contents": [{"role": roles[k % 2], "parts": [{"text": t}]} for k, t in enumerate(turns)]}
    if system is not None:
        record["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    return json.dumps(record)


def problems(result: object) -> list[tuple[int | None, str]]:
    """(line, reason) of each problem; every one must name the one file the test validated."""
    found = result.problems  # type: ignore[attr-defined]
    assert len({p.source for p in found}) <= 1 and all(p.source in result.sources for p in found)  # type: ignore[attr-defined]
    return [(p.line, p.reason) for p in found]


class Sink:
    """An ExampleSink keeping what it is given, block by block."""

    def __init__(self) -> None:
        self.blocks: list[list[bytes]] = []

    def write_block(self, lines: list[bytes], digests: list[int]) -> None:
        assert len(lines) == len(digests)
        self.blocks.append(list(lines))

    @property
    def lines(self) -> list[bytes]:
        return [line for block in self.blocks for line in block]


# text-bison@001: 8,192 input and 1,024 output tokens; an ASCII text of 4n characters is n tokens.
AT_INPUT_LIMIT, AT_OUTPUT_LIMIT = "i" * 4 * 8192, "o" * 4 * 1024


def test_each_problem_is_reported_at_its_line_on_the_line_by_line_path(write_lines: WriteLines) -> None:
    lines = [
        palm_line(0),
        "   ",  # blank: skipped, not an example (and it sends the block down the line-by-line path)
        palm(" ", "a"),
        palm("q", "\t"),
        palm(AT_INPUT_LIMIT + "i", "a"),
        palm(AT_INPUT_LIMIT, "at the input limit"),
        palm("q", AT_OUTPUT_LIMIT + "o"),
        palm("at the output limit", AT_OUTPUT_LIMIT),
        "[1, 2]",
        '{"input_text": "q", "output_text": "a"',  # malformed, yet not the last line
        gemini("one", "two", "three", "four"),
        palm_line(0),
        palm_line(0),
        *(palm_line(i) for i in range(1, 10)),
    ]
    path = write_lines("mixed.jsonl", lines)
    result = validate_sources([str(path)], "text-bison@001")
    over = "over the text-bison@001 limit of"
    assert problems(result) == [
        (3, "empty field input_text"),
        (4, "empty field output_text"),
        (5, f"input is about 8,193 tokens, {over} 8,192 (estimated)"),
        (7, f"output is about 1,025 tokens, {over} 1,024 (estimated)"),
        (9, "expected a JSON object, got an array"),
        (10, "invalid JSON: Input data was truncated"),
        (
            11,
            "mixed formats: this line is Gemini contents but line 1 is PaLM input_text/output_text "
            "(one format per file)",
        ),
    ]
    assert {p.source for p in result.problems} == {str(path)}
    assert (result.read, result.invalid, result.duplicates, result.unique) == (21, 7, 2, 12)
    assert result.model == "text-bison@001" and result.formats == {str(path): InputFormat.PALM}


def test_a_multi_turn_example_is_refused_by_a_palm_model_at_its_line(write_lines: WriteLines) -> None:
    path = write_lines("chat.jsonl", [gemini("a", "b"), gemini("one", "two", "three", "four")])
    result = validate_sources([str(path)], "text-bison@001")
    assert problems(result) == [
        (2, "PaLM models take single-turn examples (one input, one output); this one has 4 turns")
    ]
    assert result.formats == {str(path): InputFormat.GEMINI}


def test_a_block_with_a_problem_keeps_its_good_lines_byte_for_byte(write_lines: WriteLines) -> None:
    spaced = '{"input_text": "q",   "output_text": "spaced"}'  # valid, kept verbatim
    path = write_lines("block.jsonl", [spaced, palm("", "a"), palm_line(1)])
    sink = Sink()
    validator = Validator(get_model("text-bison@001"), [str(path)], sink=sink)
    validator.check_file(str(path))
    assert problems(validator.result) == [(2, "empty field input_text")]
    assert sink.lines == [spaced.encode(), palm_line(1).encode()]
    assert validator.result.formats == {str(path): InputFormat.PALM}


def test_input_and_output_tokens_count_every_turn_and_the_system_instruction(write_lines: WriteLines) -> None:
    # 4 ASCII characters are one token: turns of 1, 2, 3 and 4 tokens, a system instruction of 5.
    line = gemini("a" * 4, "a" * 8, "a" * 12, "a" * 16, system="a" * 20)
    path = write_lines("turns.jsonl", [line])
    result = validate_sources([str(path)], "gemini-2.5-flash")
    assert result.problems == []
    assert (result.input_tokens.tokens, result.output_tokens.tokens) == (1 + 2 + 3 + 5, 4)


def test_the_total_limit_counts_input_and_output_together(write_lines: WriteLines) -> None:
    # text-bison-32k: 32,768 tokens in all (input alone up to 32,768, output up to 8,192).
    at_limit = palm("i" * 4 * 30_000, "o" * 4 * 2_768)
    over = palm("i" * 4 * 30_000, "o" * 4 * 2_769)
    path = write_lines("total.jsonl", [at_limit, over])
    result = validate_sources([str(path)], "text-bison-32k")
    assert problems(result) == [
        (2, "input + output is about 32,769 tokens, over the text-bison-32k limit of 32,768 (estimated)")
    ]
    assert result.unique == 1


def test_a_palm_line_over_a_gemini_limit_is_reported_at_its_line(write_lines: WriteLines) -> None:
    path = write_lines("huge.jsonl", [palm_line(0), palm("q" * 4 * 131_072 + "q", "a")])
    result = validate_sources([str(path)], "gemini-2.5-flash")
    assert problems(result) == [
        (2, "input is about 131,073 tokens, over the gemini-2.5-flash limit of 131,072 (estimated)")
    ]


def test_a_line_longer_than_any_valid_example_is_not_parsed(write_lines: WriteLines) -> None:
    spec = get_model("text-bison@001")
    longest = (spec.max_input_tokens + spec.max_output_tokens) * 24 + (64 << 10)  # 24 bytes per token
    path = write_lines("long.jsonl", [palm_line(0), "x" * (longest + 1)])
    result = validate_sources([str(path)], "text-bison@001")
    assert problems(result) == [
        (
            2,
            f"line is {longest + 1:,} bytes: over the text-bison@001 token limits whatever it holds "
            f"(no valid example exceeds {longest:,} bytes)",
        )
    ]


def test_duplicates_are_counted_across_files(write_lines: WriteLines) -> None:
    first = write_lines("a.jsonl", [palm_line(i) for i in (0, 1, 1)])
    second = write_lines("b.jsonl", [palm_line(i) for i in (0, 2, 2, 3)])
    result = validate_sources([str(first), str(second)], "text-bison@001")
    assert (result.read, result.duplicates, result.unique) == (7, 3, 4)
    assert result.formats == {str(first): InputFormat.PALM, str(second): InputFormat.PALM}


@pytest.mark.parametrize(("examples", "short"), [(10, False), (9, True)])
def test_the_minimum_number_of_unique_examples_is_inclusive(
    write_lines: WriteLines, examples: int, short: bool
) -> None:
    path = write_lines("few.jsonl", [palm_line(i) for i in range(examples)] + [palm_line(0)])
    result = validate_sources([str(path)], "text-bison@001")
    expected = [
        Problem(
            str(path),
            None,
            "fewer examples than the minimum: 9 valid unique examples, text-bison@001 needs at least 10",
        )
    ]
    assert result.dataset_problems == (expected if short else [])


@pytest.mark.parametrize(
    ("sources", "label"),
    [([], "(no sources)"), (["a"], "a"), (["a", "b"], "a, b"), (["a", "b", "c"], "a (and 2 more files)")],
)
def test_an_empty_dataset_names_its_sources(sources: list[str], label: str) -> None:
    result = Validator(get_model("text-bison@001"), sources).finish()
    assert result.dataset_problems == [Problem(label, None, "empty dataset: no examples found")]


def test_csv_columns_default_to_input_text_and_output_text_and_blocks_stay_small(
    write_lines: WriteLines,
) -> None:
    rows = ["input_text,output_text", *(f"question {i},answer {i}" for i in range(4097)), "q," + "o" * 4097]
    path = write_lines("many.csv", rows)
    sink = Sink()
    validator = Validator(get_model("text-bison@001"), [str(path)], sink=sink)
    validator.check_file(str(path))
    result = validator.finish()
    assert result.formats == {str(path): InputFormat.CSV} and result.unique == 4097
    assert [len(block) for block in sink.blocks] == [4096, 1]
    assert problems(result) == [
        (4099, "output is about 1,025 tokens, over the text-bison@001 limit of 1,024 (estimated)")
    ]


def test_each_file_is_logged_as_it_is_validated(
    write_lines: WriteLines, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_lines("logged.jsonl", [palm_line(i) for i in range(10)])
    with caplog.at_level(logging.INFO, logger="aria_tuning.dataprep.validate"):
        validate_sources([str(path)], "text-bison@001")
    assert f"validating {path} for text-bison@001" in caplog.messages
