"""CSV datasets: a header row naming the input and output columns, one example per record.

Records may span lines (quoted newlines); a problem is reported at the line the record starts
on. Byte-level problems (not UTF-8, over-long line) are reported at their own line and make
the record that contains them invalid.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

from aria_tuning.dataprep.input_formats import Example, ExampleError, palm_example
from aria_tuning.dataprep.line_reader import iter_lines

#: (line number of the record's first line, the example or the reason it is invalid)
Record = tuple[int, Example | ExampleError]


def iter_csv(
    stream: BinaryIO, max_line_bytes: int, input_column: str, output_column: str
) -> Iterator[Record]:
    line_problems: list[tuple[int, str]] = []

    def text_lines() -> Iterator[str]:
        for lineno, line, size, _ in iter_lines(stream, max_line_bytes):
            if line is None:
                line_problems.append((lineno, f"line is {size:,} bytes, longer than any valid example"))
                yield "\n"
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                line_problems.append(
                    (lineno, f"not UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1}")
                )
                text = line.decode("utf-8", "replace")
            yield text + "\n"

    reader = csv.reader(text_lines(), strict=True)
    header: list[str] | None = None
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield start, ExampleError(f"invalid CSV: {exc}")
            start = reader.line_num + 1
            continue
        first, start = start, reader.line_num + 1
        if line_problems:
            for lineno, reason in line_problems:
                yield lineno, ExampleError(reason)
            line_problems.clear()
            if header is None:
                return  # without a readable header no record can be checked
            continue
        if header is None:
            header = row
            missing = [c for c in (input_column, output_column) if c not in header]
            if missing:
                yield (
                    first,
                    ExampleError(
                        f"CSV header has no column {' or '.join(repr(c) for c in missing)} "
                        f"(columns: {', '.join(header)}); name them with input_column/output_column"
                    ),
                )
                return
            in_idx, out_idx = header.index(input_column), header.index(output_column)
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            yield first, ExampleError(f"wrong column count: {len(row)} columns, the header has {len(header)}")
            continue
        source, target = row[in_idx], row[out_idx]
        if not source.strip():
            yield first, ExampleError(f"empty field {input_column}")
        elif not target.strip():
            yield first, ExampleError(f"empty field {output_column}")
        else:
            yield first, palm_example(source, target)
