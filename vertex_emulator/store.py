"""Where the emulator keeps its records: one small interface, in memory or in a state directory.

A record is a JSON-able dict `{"resource": <wire dict>, "internal": <emulator-only fields>}` keyed
by kind ("pipelineJobs", "models", ...) and full resource name, so the project and location of
every resource are part of its key. `DirectoryStore` writes each record through to one JSON file
and loads them all on start: a restarted emulator sees the same jobs, models and endpoints.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Record = dict[str, Any]


class MemoryStore:
    """Records in a dict; the default (state is gone when the process ends)."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Record]] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held by the backend around read-modify-write sequences."""
        return self._lock

    def get(self, kind: str, name: str) -> Record | None:
        with self._lock:
            record = self._records.get(kind, {}).get(name)
            return copy.deepcopy(record) if record is not None else None

    def put(self, kind: str, name: str, record: Record) -> None:
        with self._lock:
            self._records.setdefault(kind, {})[name] = copy.deepcopy(record)
            self._persist(kind, name, record)

    def delete(self, kind: str, name: str) -> None:
        with self._lock:
            self._records.get(kind, {}).pop(name, None)
            self._unpersist(kind, name)

    def scan(self, kind: str, prefix: str = "") -> list[Record]:
        """Records of `kind` whose name starts with `prefix`, in creation order."""
        with self._lock:
            return [copy.deepcopy(r) for n, r in self._records.get(kind, {}).items() if n.startswith(prefix)]

    def names(self, kind: str) -> Iterator[str]:
        with self._lock:
            return iter(list(self._records.get(kind, {})))

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._records.get(kind, {}))

    def next_id(self, kind: str) -> int:
        with self._lock:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            self._persist_counters()
            return self._counters[kind]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counters.clear()
            self._wipe()

    # Persistence hooks: no-ops in memory.
    def _persist(self, kind: str, name: str, record: Record) -> None:
        pass

    def _unpersist(self, kind: str, name: str) -> None:
        pass

    def _persist_counters(self) -> None:
        pass

    def _wipe(self) -> None:
        pass

    def describe(self) -> str:
        return "memory"


class DirectoryStore(MemoryStore):
    """Memory plus write-through JSON files under `root/<kind>/<quoted name>.json`."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._load()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, kind: str, name: str) -> Path:
        return self.root / kind / (urllib.parse.quote(name, safe="") + ".json")

    def _load(self) -> None:
        counters = self.root / "counters.json"
        if counters.exists():
            self._counters = json.loads(counters.read_text())
        loaded: list[tuple[float, str, str, Record]] = []
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in kind_dir.glob("*.json"):
                record = json.loads(path.read_text())
                name = urllib.parse.unquote(path.name[: -len(".json")])
                loaded.append((float(record.get("internal", {}).get("seq", 0)), kind_dir.name, name, record))
        # Keep creation order across restarts (lists return resources in that order).
        for _, kind, name, record in sorted(loaded, key=lambda item: item[0]):
            self._records.setdefault(kind, {})[name] = record

    def _write(self, path: Path, payload: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{threading.get_ident()}")
        tmp.write_text(json.dumps(payload, sort_keys=True))
        os.replace(tmp, path)

    def _persist(self, kind: str, name: str, record: Record) -> None:
        self._write(self._path(kind, name), record)

    def _unpersist(self, kind: str, name: str) -> None:
        self._path(kind, name).unlink(missing_ok=True)

    def _persist_counters(self) -> None:
        self._write(self.root / "counters.json", self._counters)

    def _wipe(self) -> None:
        for kind_dir in (p for p in self.root.iterdir() if p.is_dir()):
            for path in kind_dir.glob("*.json"):
                path.unlink()
        (self.root / "counters.json").unlink(missing_ok=True)


Store = MemoryStore


def open_store(state_dir: Path | None) -> Store:
    return DirectoryStore(state_dir) if state_dir is not None else MemoryStore()
