"""Benchmark lesson 6's design: encode once and cache vs re-run the frozen encoder every epoch.

    python benchmarks/bench_bert_cache.py [--data-dir ../shared/data] [--transformer PATH]
        [--reviews 512] [--max-length 256] [--precision auto] [--out results/benchmarks/bert_cache.json]

On a label-balanced sample of real IMDb training reviews it measures, on this machine:

1. one encoder pass (tokenize + transformer, sorted by length, inference mode) and
   writing the fp16 feature cache: seconds per review, tokens per review, bytes per review;
2. one GRU training epoch over the cached features (the lesson's head: bidirectional
   2-layer GRU, hidden 256, batch 128, Adam) and one evaluation pass: seconds per review;

then projects the lesson on the full data (17,500 train / 7,500 valid / 25,000 test,
5 epochs): cached (encode all 50,000 reviews once, then 5 GRU epochs + test) against
re-encoding train and valid in every epoch (the original tutorial's way), and the disk
space of the cache. Wall-clock seconds depend on what else runs on the machine, so the
process CPU seconds are recorded too, with the load average.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from helpers.data import read_imdb, sample_per_label  # noqa: E402
from helpers.batching import feature_loaders  # noqa: E402
from helpers.encoders import load_encoder  # noqa: E402
from helpers.features import encode_cached  # noqa: E402
from helpers.models import GRUHead  # noqa: E402
from helpers.hardware import describe_hardware, hardware_summary  # noqa: E402
from helpers.precision import training_precision  # noqa: E402
from helpers.reproducibility import set_seed  # noqa: E402
from helpers.results import git_commit  # noqa: E402
from helpers.training import run_epoch  # noqa: E402

FULL = {"train": 17_500, "valid": 7_500, "test": 25_000}


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    shared = REPO_ROOT.parent / "shared"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path,
                        default=os.environ.get("SENTIMENT_DATA_DIR") or shared / "data")
    parser.add_argument("--transformer", default=os.environ.get("SENTIMENT_TRANSFORMER")
                        or str(shared / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--reviews", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="encoder and GRU training precision (auto: bf16 only where the hardware has it)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "bert_cache.json")
    args = parser.parse_args(argv)

    set_seed(1234)
    precision = training_precision("cpu", args.precision)
    hardware = describe_hardware("cpu", precision)
    load_before = os.getloadavg()
    sample = sample_per_label(read_imdb(args.data_dir)["train"], args.reviews, seed=0)
    encoder = load_encoder(args.transformer)
    print(f"{encoder.label}: {args.reviews} reviews, max length {args.max_length}, {hardware_summary(hardware)}",
          flush=True)

    with tempfile.TemporaryDirectory() as cache:
        store, encode_wall, encode_cpu = timed(lambda: encode_cached(encoder, sample.texts, args.max_length,
                                                                     cache, precision=precision,
                                                                     desc="encoding"))
        tokens_per_review = store.meta["total_tokens"] / len(store)
        bytes_per_review = store.nbytes / len(store)
        print(f"encode: {encode_wall:.1f} s wall ({encode_cpu:.1f} s CPU), {len(store) / encode_wall:.1f} "
              f"reviews/s, {tokens_per_review:.0f} tokens/review, {store.meta['truncated']} cut", flush=True)

        loaders = feature_loaders({"train": store, "valid": store}, {"train": sample.labels, "valid": sample.labels},
                                  args.batch_size, seed=1234)
        head = GRUHead(encoder.hidden_size, args.hidden_dim, 1, args.n_layers, True, 0.25)
        optimizer = torch.optim.Adam(head.parameters())
        criterion = nn.BCEWithLogitsLoss()
        _, train_wall, train_cpu = timed(lambda: run_epoch(head, loaders["train"], criterion, "cpu", optimizer,
                                                                   precision=precision))
        print(f"GRU train epoch: {train_wall:.1f} s wall ({train_cpu:.1f} s CPU) for {len(store)} reviews",
              flush=True)
        _, eval_wall, eval_cpu = timed(lambda: run_epoch(head, loaders["valid"], criterion, "cpu"))
        print(f"GRU eval pass: {eval_wall:.1f} s wall ({eval_cpu:.1f} s CPU)", flush=True)
        cache_bytes = store.nbytes

    n = args.reviews
    per_review = {"encode": encode_wall / n, "gru_train": train_wall / n, "gru_eval": eval_wall / n}
    per_review_cpu = {"encode": encode_cpu / n, "gru_train": train_cpu / n, "gru_eval": eval_cpu / n}

    def project(rates: dict) -> dict:
        encode_all = rates["encode"] * sum(FULL.values())
        gru_epoch = rates["gru_train"] * FULL["train"] + rates["gru_eval"] * FULL["valid"]
        gru_test = rates["gru_eval"] * FULL["test"]
        cached = encode_all + args.epochs * gru_epoch + gru_test
        reencode = (args.epochs * rates["encode"] * (FULL["train"] + FULL["valid"])
                    + rates["encode"] * FULL["test"] + args.epochs * gru_epoch + gru_test)
        return {"encode_all_minutes": encode_all / 60, "gru_epoch_minutes": gru_epoch / 60,
                "gru_test_minutes": gru_test / 60,
                "gru_all_epochs_minutes": args.epochs * gru_epoch / 60,
                "cached_total_minutes": cached / 60, "reencode_every_epoch_total_minutes": reencode / 60,
                "speedup": reencode / cached,
                "encoder_share_speedup": (args.epochs * rates["encode"] * (FULL["train"] + FULL["valid"])
                                          + rates["encode"] * FULL["test"]) / encode_all}

    record = {
        "benchmark": "bert_cache", "transformer": encoder.label, "transformer_path": encoder.name,
        "reviews": n, "max_length": args.max_length, "batch_size": args.batch_size,
        "gru": {"hidden_dim": args.hidden_dim, "n_layers": args.n_layers, "bidirectional": True,
                "params": sum(p.numel() for p in head.parameters())},
        "device": hardware_summary(hardware), "hardware": hardware, "precision": precision,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "measured_seconds": {"encode": encode_wall, "gru_train_epoch": train_wall, "gru_eval_pass": eval_wall},
        "measured_cpu_seconds": {"encode": encode_cpu, "gru_train_epoch": train_cpu, "gru_eval_pass": eval_cpu},
        "encode_reviews_per_second": n / encode_wall,
        "tokens_per_review": tokens_per_review, "truncated_share": store.meta["truncated"] / n,
        "cache_bytes_sample": cache_bytes,
        "projected_full_cache_gb": bytes_per_review * sum(FULL.values()) / 1e9,
        "projected_padded_cache_gb": sum(FULL.values()) * args.max_length * encoder.hidden_size * 2 / 1e9,
        "full_data": FULL, "epochs": args.epochs,
        "projection_wall": project(per_review),
        "projection_cpu_seconds": project(per_review_cpu),
        "note": ("Projections scale the sample's per-review times linearly to the full data. 'wall' is what "
                 "this machine did under its current load; 'cpu_seconds' counts only this process's CPU time "
                 "(on an otherwise idle machine with N threads, wall is roughly cpu_seconds / N to cpu_seconds)."),
        "python": platform.python_version(), "torch": torch.__version__,
        "git_commit": git_commit(REPO_ROOT),
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: record[key] for key in ("projection_wall", "projection_cpu_seconds",
                                                   "projected_full_cache_gb", "projected_padded_cache_gb")},
                     indent=2))
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
