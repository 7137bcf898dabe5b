"""The bad-input corpus: each file holds one kind of failure, reported at its exact line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.dataprep import validate_sources

from tests.aria_tuning.dataprep.conftest import DATASETS, palm_line

BAD = DATASETS / "bad"
GOOD = DATASETS / "good"

# file -> (line reported, start of the reason); every file also holds >= 10 valid examples.
CASES = {
    "truncated_last_line.jsonl": (
        12,
        "invalid JSON: Input data was truncated (the last line has no newline: is the file truncated?)",
    ),
    "not_utf8.jsonl": (5, "not UTF-8: byte 0xf3 at column 20"),
    "invalid_json.jsonl": (3, "invalid JSON: JSON is malformed"),
    "missing_field.jsonl": (2, "missing field output_text"),
    "empty_field.jsonl": (4, "empty field output_text"),
    "wrong_type.jsonl": (6, "field input_text must be a string, got number"),
    "not_an_object.jsonl": (7, "expected a JSON object, got an array"),
    "gemini_role_order.jsonl": (3, "wrong role order: contents[0] is 'model', expected 'user'"),
    "over_token_limit.jsonl": (2, "output is about 1,200 tokens, over the text-bison@001 limit of 1,024"),
    "mixed_formats.jsonl": (
        12,
        "mixed formats: this line is Gemini contents but line 1 is PaLM input_text/output_text",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_bad_file_reports_its_line(name: str) -> None:
    line, reason = CASES[name]
    result = validate_sources([str(BAD / name)], "text-bison@001")
    assert result.invalid == 1
    assert not result.acceptable()
    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith(f"{BAD / name}:{line}: {reason}")


def test_csv_wrong_column_count_is_reported_at_the_record_line_after_a_quoted_newline() -> None:
    path = BAD / "csv_wrong_column_count.csv"
    result = validate_sources(
        [str(path)], "text-bison@001", input_column="pregunta", output_column="respuesta"
    )
    # Record 2 spans lines 3-4, so the 3-column record is on line 9, not record 8.
    assert [str(p) for p in result.problems] == [f"{path}:9: wrong column count: 3 columns, the header has 2"]


def test_csv_header_without_the_columns_names_them() -> None:
    path = GOOD / "quoted_newlines.csv"
    result = validate_sources([str(path)], "text-bison@001")
    assert str(result.problems[0]).startswith(
        f"{path}:1: CSV header has no column 'input_text' or 'output_text'"
    )


def test_csv_quoted_newlines_are_one_example() -> None:
    result = validate_sources(
        [str(GOOD / "quoted_newlines.csv")],
        "text-bison@001",
        input_column="pregunta",
        output_column="respuesta",
    )
    assert result.acceptable()
    assert (result.read, result.unique) == (12, 12)


def test_empty_dataset() -> None:
    path = BAD / "empty.jsonl"
    result = validate_sources([str(path)], "text-bison@001")
    assert result.all_problems() == [f"{path}: empty dataset: no examples found"]


def test_fewer_examples_than_the_model_minimum() -> None:
    path = BAD / "fewer_than_minimum.jsonl"
    result = validate_sources([str(path)], "text-bison@001")
    assert result.all_problems() == [
        f"{path}: fewer examples than the minimum: 3 valid unique examples, text-bison@001 needs at least 10"
    ]


def test_utf8_bom_is_accepted_and_not_part_of_the_first_example() -> None:
    bom = validate_sources([str(GOOD / "bom.jsonl")], "text-bison@001")
    plain = validate_sources([str(GOOD / "palm.jsonl")], "text-bison@001")
    assert bom.acceptable() and bom.problems == []
    assert sorted(bom.digests) == sorted(plain.digests)


@pytest.mark.parametrize("name", ["palm.jsonl", "bom.jsonl", "gemini.jsonl", "chat.jsonl"])
def test_good_files_are_valid(name: str) -> None:
    result = validate_sources([str(GOOD / name)], "text-bison@001")
    assert result.acceptable(), result.all_problems()


def test_a_10_mb_single_line_is_reported_without_being_parsed(write_lines: Callable[..., Path]) -> None:
    huge = '{"input_text": "' + "a" * (10 * 1024 * 1024) + '", "output_text": "b"}'
    path = write_lines(
        "huge.jsonl", [palm_line(i) for i in range(6)] + [huge] + [palm_line(i) for i in range(6, 12)]
    )
    result = validate_sources([str(path)], "text-bison@001")
    assert [p.line for p in result.problems] == [7]
    assert f"is {len(huge):,} bytes: over the text-bison@001 token limits" in result.problems[0].reason
    assert result.unique == 12


def test_a_10_mb_last_line_without_newline(write_lines: Callable[..., Path]) -> None:
    path = write_lines("tail.jsonl", [palm_line(i) for i in range(12)] + ["x" * (10 * 1024 * 1024)], end="")
    result = validate_sources([str(path)], "text-bison@001")
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [(13, "line is 10,485,760 bytes")]


def test_problems_in_several_files_name_each_file(write_lines: Callable[..., Path]) -> None:
    a = write_lines("a.jsonl", [palm_line(i) for i in range(6)] + ["{"])
    b = write_lines("b.jsonl", ["[]"] + [palm_line(i) for i in range(6, 12)])
    result = validate_sources([str(a), str(b)], "text-bison@001")
    assert [(p.source, p.line) for p in result.problems] == [(str(a), 7), (str(b), 1)]


def test_gemini_limits_use_the_total_of_input_and_output(write_lines: Callable[..., Path]) -> None:
    long_text = "x" * (70_000 * 4)  # 70,000 tokens each side: each fits, the sum does not
    lines = [palm_line(i) for i in range(16)]
    lines.append(f'{{"input_text": "{long_text}", "output_text": "{long_text}"}}')
    result = validate_sources([str(write_lines("g.jsonl", lines))], "gemini-2.5-flash")
    assert [p.line for p in result.problems] == [17]
    assert result.problems[0].reason.startswith(
        "input + output is about 140,000 tokens, over the gemini-2.5-flash"
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            '{"messages": [{"role": "assistant", "content": "hola"}]}',
            "wrong role order: messages[0] is 'assistant'",
        ),
        ('{"messages": [{"role": "user", "content": "hola"}]}', "wrong role order: the last message must be"),
        (
            '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}',
            "empty field messages[0].content",
        ),
        ('{"contents": [{"role": "user", "parts": [{"text": "a"}]}]}', "wrong role order: the last turn"),
        (
            '{"contents": [{"role": "user", "parts": [{"inlineData": {}}]}, '
            '{"role": "model", "parts": [{"text": "b"}]}]}',
            "contents[0].parts[0] has no text",
        ),
        (
            '{"contents": [{"role": "bot", "parts": [{"text": "a"}]}]}',
            "contents[0].role must be 'user' or 'model'",
        ),
        ('{"contents": "hola"}', "field contents must be a list of turns, got string"),
        ('{"prompt": "a", "completion": "b"}', "missing fields: expected input_text/output_text"),
    ],
)
def test_chat_and_gemini_shapes(write_lines: Callable[..., Path], record: str, reason: str) -> None:
    path = write_lines("one.jsonl", [record])
    result = validate_sources([str(path)], "gemini-2.5-flash")
    assert [p.line for p in result.problems] == [1]
    assert result.problems[0].reason.startswith(reason)


def test_multi_turn_example_cannot_become_a_palm_example(write_lines: Callable[..., Path]) -> None:
    turns = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    path = write_lines("multi.jsonl", [json.dumps({"messages": turns})])
    result = validate_sources([str(path)], "text-bison@001")
    assert result.problems[0].reason.startswith("PaLM models take single-turn examples")
    assert validate_sources([str(path)], "gemini-2.5-flash").problems == []
