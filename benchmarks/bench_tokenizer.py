"""Tokenizing time for hostile inputs: runs of one symbol, emoji, and mixed symbols.

    python benchmarks/bench_tokenizer.py [--out results/benchmarks/tokenizer.json]

spaCy splits affixes one at a time, so before tokenizer version 2 a whitespace-free run of
n symbols cost about n^2 (20,000 "!" took 25 s). `helpers.text.Tokenizer` now cuts
over-long chunks and stops after `max_tokens`; this measures what that buys. Each input
is tokenized once after a warm-up call (spaCy caches repeated pieces, so the mixed-symbol
inputs, which never repeat, are the honest worst case). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.text import Tokenizer  # noqa: E402

SYMBOLS = "!$%)'€✓😀(,.?\"-*#@"


def hostile_inputs(seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    return {
        '"!" x 1,000': "!" * 1_000, '"!" x 10,000': "!" * 10_000, '"!" x 20,000': "!" * 20_000,
        '"!" x 100,000': "!" * 100_000, "emoji x 20,000": "\U0001F600" * 20_000,
        "mixed symbols x 15,620": "".join(rng.choice(SYMBOLS) for _ in range(15_620)),
        "mixed symbols x 1,000,000": "".join(rng.choice(SYMBOLS) for _ in range(1_000_000)),
        '"a," x 7,810': "a," * 7_810,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    tokenizer = Tokenizer()
    tokenizer("warm up")
    rows = {}
    for label, text in hostile_inputs().items():
        start = time.perf_counter()
        n_tokens = len(tokenizer(text))
        rows[label] = {"seconds": round(time.perf_counter() - start, 4), "tokens": n_tokens}
        print(f"{label:28s} {rows[label]['seconds']:8.4f} s  {n_tokens:6d} tokens", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"tokenizer": tokenizer.config, "machine": platform.processor() or
                                        platform.machine(), "inputs": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
