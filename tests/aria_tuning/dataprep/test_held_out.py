"""The eval split read back for the quality gate: what prepare_dataset wrote, through the same parsers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.catalog import DataFormat
from aria_tuning.dataprep import DatasetError, held_out_examples, prepare_dataset

from tests.aria_tuning.dataprep.conftest import gemini_line


def test_a_prepared_gemini_eval_split_reads_back_as_it_was_written(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    lines = [gemini_line(i, system="Sé breve.") for i in range(200)]
    result = prepare_dataset(
        [str(write_lines("g.jsonl", lines))], "gemini-2.5-flash", str(tmp_path / "g"), eval_fraction=0.2
    )
    text = Path(result.eval_uri or "").read_text()
    examples = held_out_examples(text, DataFormat.GEMINI, "eval.jsonl", 1000)
    assert len(examples) == result.counts["eval"]
    for example, line in zip(examples, text.splitlines(), strict=True):
        record = json.loads(line)
        assert example.contents == record["contents"][:-1]
        assert example.system_instruction == record["systemInstruction"]
        assert example.expected == record["contents"][-1]["parts"][0]["text"]
        assert example.prompt == record["contents"][-2]["parts"][0]["text"]


def test_a_line_separator_inside_a_string_does_not_split_the_line() -> None:
    # JSON writers (ours included) leave U+2028 unescaped; only "\n" ends a JSONL line.
    text = '{"input_text":"uno\u2028dos","output_text":"tres\u0085"}\n'
    [example] = held_out_examples(text, DataFormat.PALM, "eval.jsonl", 5)
    assert (example.prompt, example.expected) == ("uno\u2028dos", "tres\u0085")


def test_a_line_of_the_other_format_is_reported_at_its_line() -> None:
    palm = json.dumps({"input_text": "a", "output_text": "b"})
    with pytest.raises(DatasetError) as info:
        held_out_examples(f"{palm}\n{gemini_line(1)}\n", DataFormat.PALM, "gs://b/eval.jsonl", 5)
    assert info.value.problems == [
        "gs://b/eval.jsonl:2: this line is Gemini contents, the split should hold PaLM input_text/output_text"
    ]
