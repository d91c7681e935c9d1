"""Lesson 2's training step under one memory allocator setting: seconds a step, minor page faults, system time.

    for setting in default glibc-thresholds jemalloc; do
        python benchmarks/bench_allocator.py --setting $setting --steps 10
    done

Why: during lesson 2's float32 training on a 2-core AVX2 machine the kernel spent 13-21% of the CPU time in the
system, with about 122,000 minor page faults a second (docs/reference-runs.md): glibc returning large freed
buffers to the operating system and faulting them back in on the next batch. This measures whether keeping them
helps. Each setting runs in a fresh process (an allocator is chosen when a process starts):

* default: glibc as it is;
* glibc-thresholds: `MALLOC_MMAP_THRESHOLD_` at its 32 MiB maximum, `MALLOC_TRIM_THRESHOLD_` 4 GiB,
  `MALLOC_TOP_PAD_` 256 MiB (large buffers come from the heap and stay there);
* jemalloc: `LD_PRELOAD` of Debian's libjemalloc2 (`apt-get install libjemalloc2`).

The model is lesson 2's `BiLSTM` (25,002 words, 50-d embeddings, hidden 256, 2 layers, bidirectional, dropout
0.5) in float32 with Adam, on 2 threads, trained on distinct random batches of 64 reviews (no batch repeats, so
no buffer is reused by chance): a centre length drawn log-uniform over 49-403 tokens, the batch's lengths within
10% of it, as a bucket sampler gives. Three untimed steps first. Timings need an otherwise idle machine; compare
figures from one machine only.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
SETTINGS = {
    "default": {},
    "glibc-thresholds": {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30),
                         "MALLOC_TOP_PAD_": str(256 * 2**20)},
    "jemalloc": {"LD_PRELOAD": JEMALLOC},
}
WARM_STEPS = 3


def measure(steps: int, threads: int = 2) -> str:
    """Train `steps` timed steps in this process; the result line."""
    import torch
    sys.path.insert(0, str(REPO_ROOT))
    from helpers.lessons import BiLSTM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = BiLSTM(25_002, 50, 256, 1, 2, True, 0.5, 1)
    optimizer = torch.optim.Adam(model.parameters())
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batches = []
    for _ in range(steps + WARM_STEPS):
        centre = int(torch.exp(torch.empty(1).uniform_(3.9, 6.0, generator=generator)))
        lengths = torch.randint(max(1, int(centre * 0.9)), int(centre * 1.1) + 2, (64,),
                                generator=generator).sort(descending=True).values
        text = torch.randint(2, 25_002, (int(lengths[0]), 64), generator=generator)   # [time, batch]
        batches.append((text, lengths, torch.randint(0, 2, (64,), generator=generator).float()))

    def step(text, lengths, labels):
        optimizer.zero_grad()
        loss_fn(model(text, lengths).squeeze(1), labels).backward()
        optimizer.step()

    for batch in batches[:WARM_STEPS]:
        step(*batch)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start, cpu = time.perf_counter(), os.times()
    for batch in batches[WARM_STEPS:]:
        step(*batch)
    wall = time.perf_counter() - start
    end_cpu = os.times()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return (f"{wall / steps:.3f} s a step, {faults / wall:,.0f} minor page faults a second, system "
            f"{100 * (end_cpu.system - cpu.system) / (wall * threads):.0f}% and user "
            f"{100 * (end_cpu.user - cpu.user) / (wall * threads):.0f}% of {threads} threads' time")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=SETTINGS, default="default")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)   # the child's side
    args = parser.parse_args(argv)
    if args.in_process:
        print(measure(args.steps), flush=True)
        return 0
    if args.setting == "jemalloc" and not Path(JEMALLOC).is_file():
        print(f"error: {JEMALLOC} not found (apt-get install libjemalloc2)", file=sys.stderr)
        return 2
    child = subprocess.run([sys.executable, __file__, "--in-process", "--steps", str(args.steps)],
                           env={**os.environ, **SETTINGS[args.setting]}, capture_output=True, text=True)
    if child.returncode:
        print(child.stderr, file=sys.stderr)
        return child.returncode
    print(f"{args.setting:>16}: {child.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
