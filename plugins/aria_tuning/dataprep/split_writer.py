"""Writing the split: pass one streams kept examples into local temp files, `publish` moves them out.

Train lines go straight to a temp train file (hashed as written); eval candidates go, with their
digest, to a small candidates file. Nothing reaches the output location until `publish`, which
runs only after the data and the plan were accepted. Which examples go where is `split_rule`'s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from aria_tuning.dataprep import file_io
from aria_tuning.dataprep.split_rule import eval_cut, eval_threshold

if TYPE_CHECKING:
    from google.cloud import storage

_HEX = 16  # a candidate line is "<16 hex digits of the digest><json>\n"


class SplitWriter:
    """An `ExampleSink` for `validate_sources`: splits kept examples as they stream by."""

    def __init__(self, eval_fraction: float) -> None:
        self.cut = eval_cut(eval_fraction)
        fd, self._train_path = tempfile.mkstemp(prefix="aria-train-", suffix=".jsonl")
        self._train: BinaryIO = os.fdopen(fd, "wb", buffering=file_io.WRITE_BUFFER_SIZE)
        self._train_hash = hashlib.sha256()
        self._candidates: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="aria-eval-", buffering=file_io.WRITE_BUFFER_SIZE
        )
        self.train_examples = self.train_bytes = self.candidates = 0
        self._threshold = 0

    def write_block(self, lines: list[bytes], digests: list[int]) -> None:
        cut = self.cut
        train = lines
        if cut:
            candidates = [i for i, digest in enumerate(digests) if digest < cut]
            if candidates:
                self._candidates.write(b"".join([b"%016x%b\n" % (digests[i], lines[i]) for i in candidates]))
                self.candidates += len(candidates)
                train = [line for line, digest in zip(lines, digests, strict=True) if digest >= cut]
        if train:
            self._write_train(b"\n".join([*train, b""]), len(train))

    def _write_train(self, block: bytes, examples: int) -> None:
        self._train_hash.update(block)
        self._train.write(block)
        self.train_examples += examples
        self.train_bytes += len(block)

    def _candidate_lines(self) -> Any:
        self._candidates.flush()
        self._candidates.seek(0)
        return iter(self._candidates)

    def finish(self, n_eval: int) -> None:
        """Keep the `n_eval` smallest-digest candidates for eval; append the others to train."""
        if not self.candidates:
            return
        self._threshold = eval_threshold(
            lambda: (int(line[:_HEX], 16) for line in self._candidate_lines()), n_eval
        )
        threshold = self._threshold
        for chunk in self._chunks(lambda digest: digest > threshold):
            self._write_train(b"".join(chunk), len(chunk))

    def _chunks(self, wanted: Callable[[int], bool], size: int = 4096) -> Iterator[list[bytes]]:
        """The candidates `wanted` keeps (without their digest), a few thousand at a time."""
        chunk: list[bytes] = []
        for line in self._candidate_lines():
            if wanted(int(line[:_HEX], 16)):
                chunk.append(line[_HEX:])
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def publish(
        self, train_uri: str, eval_uri: str | None, storage_client: storage.Client | None = None
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """Move train (and write eval) to their final place; (files, content sha256)."""
        self._train.close()
        content = self._train_hash.copy()
        files: dict[str, dict[str, Any]] = {
            "train.jsonl": {
                "uri": train_uri,
                "examples": self.train_examples,
                "bytes": self.train_bytes,
                "sha256": self._train_hash.hexdigest(),
            }
        }
        if eval_uri is not None:
            eval_hash = hashlib.sha256()
            count = size = 0
            threshold = self._threshold
            with file_io.open_write(eval_uri, storage_client) as dst:
                for chunk in self._chunks(lambda digest: digest <= threshold):
                    block = b"".join(chunk)
                    dst.write(block)
                    eval_hash.update(block)
                    content.update(block)
                    size += len(block)
                    count += len(chunk)
            files["eval.jsonl"] = {
                "uri": eval_uri,
                "examples": count,
                "bytes": size,
                "sha256": eval_hash.hexdigest(),
            }
        # train last: a published train.jsonl always has its eval.jsonl next to it
        if not file_io.is_gcs(train_uri):
            os.chmod(self._train_path, 0o644)  # mkstemp made it private; eval and report are 0644 too
        file_io.publish_file(self._train_path, train_uri, storage_client)
        return files, content.hexdigest()

    def close(self) -> None:
        """Drop the temp files (after `publish`, or on failure)."""
        self._train.close()
        self._candidates.close()
        if os.path.exists(self._train_path):
            os.unlink(self._train_path)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
