"""Line splitting over blocks: lines across block edges, over-long lines, BOM, missing last newline."""

from __future__ import annotations

import io

import pytest
from aria_tuning.dataprep.line_reader import iter_blocks, iter_lines


def reference(data: bytes, limit: int) -> list[tuple[int, bytes | None, int, bool]]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parts = data.split(b"\n")
    last = parts.pop()
    out = [(i + 1, p if len(p) <= limit else None, len(p), True) for i, p in enumerate(parts)]
    if last:
        out.append((len(parts) + 1, last if len(last) <= limit else None, len(last), False))
    return out


SAMPLES = [
    b"",
    b"a\nbb\nccc\n",
    b"a\nbb\nccc",
    b"\xef\xbb\xbfone\ntwo\n",
    b"short\n" + b"x" * 50 + b"\nafter\n",
    b"x" * 50,
    b"\n\n\nz\n",
    b"y" * 19 + b"\n" + b"z" * 20 + b"\n" + b"w" * 21,
]


@pytest.mark.parametrize("data", SAMPLES)
@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 64, 1 << 20])
def test_lines_match_a_plain_split_for_any_block_size(data: bytes, block_size: int) -> None:
    got = list(iter_lines(io.BytesIO(data), max_line_bytes=20, block_size=block_size))
    assert got == reference(data, 20)


def test_blocks_flag_over_long_lines_as_not_clean() -> None:
    blocks = list(
        iter_blocks(io.BytesIO(b"ok\n" + b"x" * 30 + b"\nok\n"), max_line_bytes=20, block_size=1 << 10)
    )
    assert blocks == [(1, [b"ok", 30, b"ok"], False, True)]


def test_bom_is_only_dropped_at_the_start() -> None:
    data = b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n"
    assert [line for _, line, _, _ in iter_lines(io.BytesIO(data), 100)] == [b"a", b"\xef\xbb\xbfb"]
