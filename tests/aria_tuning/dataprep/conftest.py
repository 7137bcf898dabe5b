"""Helpers for the dataprep tests: dataset files written on the fly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[2] / "data" / "datasets"


def palm_line(i: int) -> str:
    return json.dumps(
        {"input_text": f"¿Dónde está mi pedido {i}?", "output_text": f"Llega el día {i}."}, ensure_ascii=False
    )


def gemini_line(i: int, system: str | None = None) -> str:
    record: dict = {
        "contents": [
            {"role": "user", "parts": [{"text": f"Pregunta {i}"}]},
            {"role": "model", "parts": [{"text": f"Respuesta {i}"}]},
        ]
    }
    if system:
        record = {"systemInstruction": {"role": "system", "parts": [{"text": system}]}, **record}
    return json.dumps(record, ensure_ascii=False)


@pytest.fixture
def write_lines(tmp_path: Path) -> Callable[..., Path]:
    """write_lines(name, lines, end="\\n") -> path of a file holding those lines."""

    def write(name: str, lines: list[str], end: str = "\n") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\n".join(lines) + end).encode("utf-8"))
        return path

    return write
