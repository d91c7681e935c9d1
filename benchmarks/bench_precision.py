"""Lesson 2's training epoch in float32, in native bfloat16 and in emulated bfloat16, on this CPU.

    python benchmarks/bench_precision.py --data-dir ../shared/data [--out results/benchmarks/precision.json]

Builds lesson 2's model and data as its notebook does (IMDb 17,500 training reviews,
25,000-word vocabulary, GloVe with the lowercase fallback, 2-layer bidirectional LSTM,
batches of 64), then times one training epoch per setting, each in a fresh process with
the same seed, so every setting trains on the same batches from the same weights:

    fp32           float32 throughout
    bf16           bfloat16 autocast, with whatever the CPU offers
    bf16-emulated  bfloat16 autocast with oneDNN capped at AVX512 without BF16
                   (ONEDNN_MAX_CPU_ISA=AVX512_CORE): what a CPU without AVX512-BF16/AMX does

The emulated setting only differs from `bf16` on a CPU with native bfloat16. The point: on
a CPU without it, `torch.ops.mkldnn._is_mkldnn_bf16_supported()` still says yes, and the
course's old precision rule trained in emulated bf16 there. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.results import git_commit  # noqa: E402

SETTINGS = {"fp32": ("fp32", {}), "bf16": ("bf16", {}),
            "bf16-emulated": ("bf16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})}


def one_epoch(data_dir: str, precision: str, seed: int = 1234) -> dict:
    """Lesson 2's set-up, then one timed training epoch in `precision`."""
    # deferred: only the --child processes train; the parent that starts them needs no torch
    import torch
    from torch import nn

    from helpers.batching import loaders_for
    from helpers.data import load_imdb, stratified_split
    from helpers.encoding import TextEncoding
    from helpers.hardware import describe_hardware, hardware_summary
    from helpers.models import BiLSTM
    from helpers.reproducibility import make_reproducible
    from helpers.text import Tokenizer, Vocab
    from helpers.training import run_epoch
    from helpers.vectors import embedding_matrix, load_glove

    make_reproducible(seed, threads=os.cpu_count())
    tokenizer = Tokenizer()
    imdb = load_imdb(tokenizer, data_dir)
    train_data, _ = stratified_split(imdb["train"], valid_fraction=0.3, seed=seed)
    vocab = Vocab.from_counts(train_data.tokens.counts(), max_size=25_000)
    glove = load_glove("glove.6B.50d", data_dir)
    model = BiLSTM(len(vocab), glove.dim, 256, 1, 2, True, 0.5, vocab.pad_index)
    model.embedding.weight.data.copy_(embedding_matrix(vocab, glove, unk_init=torch.Tensor.normal_,
                                                       lowercase_fallback=True))
    loader = loaders_for({"train": train_data}, TextEncoding(tokenizer, vocab, batch_first=False), 64, seed=seed)["train"]
    optimizer = torch.optim.Adam(model.parameters())
    start = time.perf_counter()
    result = run_epoch(model, loader, nn.BCEWithLogitsLoss(), "cpu", optimizer, precision=precision)
    return {"precision": precision, "epoch_seconds": round(time.perf_counter() - start, 1),
            "train_loss": round(result["loss"], 4), "n_train": len(train_data),
            "hardware": hardware_summary(describe_hardware("cpu", precision))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("SENTIMENT_DATA_DIR"), required=False)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("pass --data-dir (the folder with imdb/ and glove/) or set SENTIMENT_DATA_DIR")
    if args.child:
        print(json.dumps(one_epoch(args.data_dir, args.child)))
        return
    rows = {}
    for name in args.settings.split(","):
        precision, extra_env = SETTINGS[name]
        process = subprocess.run([sys.executable, __file__, "--data-dir", args.data_dir, "--child", precision],
                                 env={**os.environ, **extra_env},
                                 capture_output=True, text=True, check=True)
        rows[name] = {**json.loads(process.stdout.strip().splitlines()[-1]), "environment": extra_env}
        print(f"{name:14s} {rows[name]['epoch_seconds']:7.1f} s  train loss {rows[name]['train_loss']}", flush=True)
    print(rows[next(iter(rows))]["hardware"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"git_commit": git_commit(REPO_ROOT), "settings": rows}, indent=2) + "\n",
                            encoding="utf-8")


if __name__ == "__main__":
    main()
