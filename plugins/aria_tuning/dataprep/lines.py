"""Split a byte stream into numbered lines without ever holding more than one block plus one line.

Lines longer than `max_line_bytes` are measured and skipped, not kept: a runaway line (a binary
file, a missing newline) costs no memory. A UTF-8 byte-order mark at the start is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from aria_tuning.dataprep.sources import BLOCK_SIZE

BOM = b"\xef\xbb\xbf"

#: (line number from 1, the line without its "\n" or None when over the limit, byte length,
#: whether a "\n" ended it: False only for a last line without newline).
Line = tuple[int, bytes | None, int, bool]


def iter_lines(stream: BinaryIO, max_line_bytes: int, block_size: int = BLOCK_SIZE) -> Iterator[Line]:
    lineno = 0
    carry = b""  # start of the current line, continued in the next block
    over = -1  # >= 0 while discarding an over-long line: its length so far
    first = True
    read = stream.read
    while True:
        block = read(block_size)
        if first:
            first = False
            if block.startswith(BOM):
                block = block[len(BOM) :]
        if not block:
            break
        parts = block.split(b"\n")
        tail = parts.pop()
        if parts:
            head = parts[0]
            lineno += 1
            if over >= 0:
                yield lineno, None, over + len(head), True
                over = -1
            else:
                if carry:
                    head = carry + head
                    carry = b""
                size = len(head)
                yield lineno, head if size <= max_line_bytes else None, size, True
            for line in parts[1:]:
                lineno += 1
                size = len(line)
                yield lineno, line if size <= max_line_bytes else None, size, True
            carry = tail
        elif over >= 0:
            over += len(tail)
            continue
        else:
            carry += tail
        if len(carry) > max_line_bytes:
            over, carry = len(carry), b""
    if over >= 0:
        yield lineno + 1, None, over, False
    elif carry:
        yield lineno + 1, carry if len(carry) <= max_line_bytes else None, len(carry), False
