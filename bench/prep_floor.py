"""Data prep's floor and what bounds it: the CPU time of reading a file and decoding every line with
msgspec, the cost of each job prep cannot skip on the same file, and a profile of prep itself.

Run in fresh interpreters by bench/prep_bench.py, on the file it measures prep on, in the same run.
"""

from __future__ import annotations

#: The floor: read the file and decode every line with msgspec, nothing else (a plain JSONL reader).
#: Then, each timed on its own over the same file: what prep must do on top of decoding to write
#: the same bytes (the per-example SHA-256 digests that decide duplicates and the split, the
#: SHA-256 of the prepared content for the report, the ASCII count behind every token estimate).
FLOOR = """
import hashlib, json, operator, sys, time
import msgspec

path = {source!r}
BLOCK = 1 << 20

def lines():
    with open(path, "rb", buffering=0) as stream:
        carry = b""
        for block in iter(lambda: stream.read(BLOCK), b""):
            parts = (carry + block).split(b"\\n")
            carry = parts.pop()
            yield parts
        if carry:
            yield [carry]

def timed(work):
    started = time.process_time()
    work()
    return time.process_time() - started

decode = msgspec.json.Decoder().decode
texts = operator.itemgetter("input_text", "output_text")
ascii_only = operator.methodcaller("encode", "ascii", "ignore")

def floor():
    with open(path, "rb", buffering=1 << 20) as stream:
        for line in stream:
            decode(line)

def digests():
    sha256 = hashlib.sha256
    for block in lines():
        [sha256(line).digest() for line in block]

def content_hash():
    whole = hashlib.sha256()
    with open(path, "rb", buffering=0) as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            whole.update(block)

def ascii_counts():
    # Decoding is the floor's: only the counting is timed here.
    spent = 0.0
    for block in lines():
        fields = [text for line in block for text in texts(decode(line))]
        started = time.process_time()
        list(map(len, map(ascii_only, fields)))
        spent += time.process_time() - started
    return spent

figures = {{"floor_cpu_seconds": timed(floor)}}
figures["digests_cpu_seconds"] = timed(digests)
figures["content_hash_cpu_seconds"] = timed(content_hash)
figures["ascii_count_cpu_seconds"] = ascii_counts()
figures["peak_rss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(figures))
"""

#: prepare_dataset under cProfile: own time per function, the largest first (profiling slows the
#: Python-level functions more than the C calls, so the shares are indicative).
PROFILE = """
import cProfile, json, pstats, sys
sys.path.insert(0, {plugins!r})
from aria_tuning.dataprep import prepare_dataset
profiler = cProfile.Profile()
profiler.enable()
prepare_dataset([{source!r}], "text-bison@002", {out!r}, max_train_steps=10**9)
profiler.disable()
stats = pstats.Stats(profiler).stats
total = sum(entry[2] for entry in stats.values())
top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:{top}]
print(json.dumps({{
    "total_seconds": total,
    "top": [
        {{"function": (f"{{key[0].split('/plugins/')[-1]}}:{{key[1]}}({{key[2]}})" if key[0] != "~"
                      else key[2]), "calls": entry[1], "seconds": entry[2]}}
        for key, entry in top
    ],
}}))
"""
