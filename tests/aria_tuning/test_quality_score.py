"""Quality-gate scoring: eval JSONL parsing for both formats, exact match and similarity."""

from __future__ import annotations

import json

import pytest
from aria_tuning import quality_score as qs
from aria_tuning.catalog import DataFormat
from aria_tuning.errors import DatasetError


def test_palm_and_gemini_examples() -> None:
    palm = json.dumps({"input_text": "¿Horario?", "output_text": "De 9 a 18."})
    [example] = qs.held_out_examples(palm, DataFormat.PALM, "gs://b/eval.jsonl", 5)
    assert (example.prompt, example.expected, example.line) == ("¿Horario?", "De 9 a 18.", 1)
    turns_in = [
        {"role": "user", "parts": [{"text": "Hola"}]},
        {"role": "model", "parts": [{"text": "¡Hola!"}]},
    ]
    gemini = json.dumps({"systemInstruction": {"parts": [{"text": "Eres amable."}]}, "contents": turns_in})
    [turns] = qs.held_out_examples("\n" + gemini, DataFormat.GEMINI, "gs://b/eval.jsonl", 5)
    assert (turns.prompt, turns.expected, turns.line, len(turns.contents or [])) == ("Hola", "¡Hola!", 2, 1)


def test_unreadable_lines_are_reported_with_file_and_line() -> None:
    text = (
        json.dumps({"input_text": "a", "output_text": "b"})
        + "\n{not json\n"
        + json.dumps({"input_text": "x"})
    )
    with pytest.raises(DatasetError) as info:
        qs.held_out_examples(text, DataFormat.PALM, "gs://b/eval.jsonl", 10)
    assert [p.split(": ")[0] for p in info.value.problems] == ["gs://b/eval.jsonl:2", "gs://b/eval.jsonl:3"]


def test_score_combines_exact_match_and_similarity() -> None:
    perfect = qs.score([("De 9 a 18.", "de 9  a 18."), ("Sí", "sí")])
    assert (perfect.exact_match, perfect.similarity, perfect.score) == (1.0, 1.0, 1.0)
    bad = qs.score([("De 9 a 18.", "No lo sé, lo siento mucho."), ("Sí", "Tal vez mañana")])
    assert bad.exact_match == 0.0 and bad.score < 0.3
