"""PaLM lines a block at a time give exactly what the line-by-line path gives, and cannot be fooled."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from aria_tuning.dataprep import prepare_dataset, validate_sources
from aria_tuning.dataprep.convert import to_palm
from aria_tuning.dataprep.input_formats import Example

from tests.aria_tuning.dataprep.conftest import palm_line


def test_lines_that_are_only_valid_together_are_each_reported(write_lines: Callable[..., Path]) -> None:
    # Joined as "[[l1]\n,[l2]\n,...]" a line ending with "],[" and two half-objects would balance out;
    # the batch must not accept them.
    tricky = [
        '{"input_text": "a", "output_text": "b"}],[{"input_text": "c", "output_text": "d"}',
        '{"input_text": "e",',
        '"output_text": "f"}',
    ]
    lines = [palm_line(i) for i in range(12)] + tricky
    result = validate_sources([str(write_lines("t.jsonl", lines))], "text-bison@002")
    assert [p.line for p in result.problems] == [13, 14, 15]
    assert result.unique == 12


def test_extra_keys_take_the_line_path_and_are_dropped(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    lines = [json.dumps({"input_text": f"q{i}", "output_text": f"a{i}", "id": i}) for i in range(12)]
    result = prepare_dataset(
        [str(write_lines("x.jsonl", lines))], "text-bison@002", str(tmp_path / "o"), eval_fraction=0
    )
    first = Path(result.train_uri).read_text().splitlines()[0]
    assert json.loads(first) == {"input_text": "q0", "output_text": "a0"}


def test_fast_and_line_paths_write_identical_bytes(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    good = [palm_line(i) for i in range(40)]
    clean = prepare_dataset([str(write_lines("clean.jsonl", good))], "text-bison@002", str(tmp_path / "a"))
    # One bad line sends its whole block down the line-by-line path.
    mixed = write_lines("mixed.jsonl", [*good[:20], "not json", *good[20:]])
    slow = prepare_dataset(
        [str(mixed)], "text-bison@002", str(tmp_path / "b"), invalid_policy="skip", max_invalid_fraction=0.1
    )
    assert slow.content_sha256 == clean.content_sha256
    assert Path(slow.train_uri).read_bytes() == Path(clean.train_uri).read_bytes()


def test_struct_encoding_matches_the_converter() -> None:
    line = json.loads(palm_line(7))
    example = Example(None, (("user", line["input_text"]), ("model", line["output_text"])))
    assert to_palm(example) == json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()


def test_empty_and_over_limit_examples_in_a_clean_block_are_reported_at_their_lines(
    write_lines: Callable[..., Path],
) -> None:
    lines = [palm_line(i) for i in range(30)]
    lines[4] = json.dumps({"input_text": " ", "output_text": "x"})
    lines[9] = json.dumps({"input_text": "x", "output_text": "y" * 5000})
    result = validate_sources([str(write_lines("c.jsonl", lines))], "text-bison@002")
    assert [(p.line, p.reason.split(" ")[0]) for p in result.problems] == [(5, "empty"), (10, "output")]
    assert result.unique == 28


def test_palm_lines_are_copied_verbatim_only_when_provably_safe(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    lines = [palm_line(i) for i in range(12)]
    lines += [
        '{"input_text": "a", "input_text": "dup", "output_text": "b"}',  # duplicate key
        '{"input_text": "a", "\\u0069nput_text": "esc", "output_text": "c"}',  # duplicate, escaped
        '{"input_text": "see my_text", "output_text": "d"}',  # a value ending in _text
        '{"input_text": "e", "output_text": "f"}\r',  # CRLF
    ]
    result = prepare_dataset(
        [str(write_lines("v.jsonl", lines))], "text-bison@002", str(tmp_path / "v"), eval_fraction=0
    )
    written = Path(result.train_uri).read_bytes().splitlines()
    assert written[:12] == [line.encode() for line in lines[:12]]  # verbatim
    assert written[12:] == [
        b'{"input_text":"dup","output_text":"b"}',
        b'{"input_text":"esc","output_text":"c"}',
        b'{"input_text":"see my_text","output_text":"d"}',
        b'{"input_text":"e","output_text":"f"}',
    ]
