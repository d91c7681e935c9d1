"""Benchmark the deployed sentiment model: this handler (ONNX Runtime) vs the old way (torch eager).

    python benchmarks/bench_deployment.py [--model sentiment] [--package-zip PATH] [--requests 10000]
                                          [--concurrency 16] [--out results/benchmarks/deployment.json]

Side by side, on the same bundle (the torch model gets the ONNX file's own weights):

* cold start: a fresh process imports the handler and loads the model (median of --cold-runs).
  ONNX Runtime: the *unzipped Lambda package* run by python3.12 with nothing else on sys.path
  (the zip from `npx serverless package`, built if --package-zip is not given). torch eager:
  the venv's Python importing torch, helpers.models and the state dict, as the old handler did.
* warm latency: p50 / p99 of a whole POST through the handler (JSON parsing, spaCy tokenizing,
  the model, the response), one review and a batch of 32 real IMDb reviews, one thread each
  (a Lambda of 1024 MB has about 0.6 vCPU).
* unzipped package size: the ONNX Runtime package as built; torch's is estimated as that package
  minus onnxruntime plus the CPU-only torch installed in the venv (it does not fit in 250 MB).
* load: --requests POSTs at --concurrency against `python -m deployment.local` on 127.0.0.1.

Goals (issue #5): cold start <= 1.5 s, p50 <= 2 ms for one review (FastText), unzipped package
<= 150 MB, zero errors under load. Results go to --out and are printed as a table.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from deployment.latency import percentile, time_calls  # noqa: E402
from deployment.lambda_package import build_package as build_lambda_package  # noqa: E402
from deployment.lambda_package import folder_bytes  # noqa: E402
from deployment.lambda_package import lambda_python as find_lambda_python  # noqa: E402

DEPLOYMENT = REPO_ROOT / "deployment"
GOALS = {"cold_start_s": 1.5, "p50_one_ms": 2.0, "package_mb": 150.0}


def folder_mb(folder: Path) -> float:
    return folder_bytes(folder) / 1e6


def lambda_python() -> str:
    python = find_lambda_python()
    if python is None:
        raise SystemExit("no python3.12 found (set SLS_PYTHON_BIN): needed to run the Lambda package")
    return python


def build_package(python: str) -> Path:
    print("building the Lambda package (npx serverless package)...", flush=True)
    return build_lambda_package(python)   # into deployment/.serverless, serverless's default


def reviews(n: int = 64) -> list[str]:
    """Real IMDb test reviews from the committed fixtures, mixed lengths."""
    from helpers.data import read_imdb

    texts = read_imdb(REPO_ROOT / "helpers" / "fixtures" / "data")["test"].texts
    return [texts[i] for i in range(0, len(texts), max(1, len(texts) // n))][:n]


# ------------------------------------------------------------------------------------ torch eager (old way)

TORCH_HANDLER = r'''
"""The old way: torch in the handler. Same bundle (weights from its ONNX file), same tokenizer."""
import json, time
start = time.perf_counter()
import torch
from helpers.models import FastText, CNN
from helpers.encoding import TextEncoding

FOLDER = {folder!r}
torch.set_num_threads(1)
meta = json.load(open(FOLDER + "/meta.json"))
state = torch.load({state!r}, weights_only=True)
encoding = TextEncoding.from_bundle(FOLDER, meta)
vocab, tokenizer = encoding.vocab, encoding.tokenizer
emb = state["embedding.weight"]
if meta["architecture"] == "FastText":
    model = FastText(emb.shape[0], emb.shape[1], state["fc.weight"].shape[0], vocab.pad_index)
else:
    raise SystemExit("the benchmark's torch handler knows FastText only")
model.load_state_dict(state)
model.eval()
tokenizer("warm up")

def handle(event):
    payload = json.loads(event["body"])
    texts = [payload["text"]] if "text" in payload else payload["texts"]
    ids, lengths = map(torch.from_numpy, encoding.encode(texts))
    with torch.inference_mode():
        p = torch.sigmoid(model(ids, lengths)[:, 0]).tolist()
    labels = meta["display_labels"]
    preds = [{{"label": labels[int(q > 0.5)], "probability": max(q, 1 - q)}} for q in p]
    return {{"statusCode": 200, "body": json.dumps({{"model": meta["name"], "predictions": preds}})}}

LOAD_SECONDS = time.perf_counter() - start
'''


def torch_state_from_onnx(bundle: Path, out: Path) -> Path:
    """The FastText weights out of the bundle's ONNX initializers, as a torch state dict (benchmark only)."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(bundle / "model.onnx"))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    state = {}
    for name in ("embedding.weight", "fc.weight", "fc.bias"):
        if name not in weights:
            raise SystemExit(f"{name} not among the ONNX initializers {sorted(weights)[:8]}")
        state[name] = torch.from_numpy(weights[name].copy())
    torch.save(state, out)
    return out


def write_torch_handler(bundle: Path, folder: Path) -> Path:
    state = torch_state_from_onnx(bundle, folder / "state.pt")
    path = folder / "torch_handler.py"
    path.write_text(TORCH_HANDLER.format(folder=str(bundle), state=str(state)), encoding="utf-8")
    return path


COLD_ONNX = r"""
import sys, time, json
t0 = time.perf_counter()
sys.path[:] = [{package!r}] + [p for p in sys.path if p and 'site-packages' not in p]
import handler
handler.get_model({model!r})
load = time.perf_counter() - t0
r = handler.sentiment({{"httpMethod": "POST", "body": json.dumps({{"text": "A fine film."}})}})
assert r["statusCode"] == 200, r
print(json.dumps({{"load": load, "first": time.perf_counter() - t0 - load, "torch": "torch" in sys.modules}}))
"""

COLD_TORCH = r"""
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, {repo!r}); sys.path.insert(0, {folder!r})
import torch_handler
load = time.perf_counter() - t0
r = torch_handler.handle({{"body": json.dumps({{"text": "A fine film."}})}})
assert r["statusCode"] == 200
print(json.dumps({{"load": load, "first": time.perf_counter() - t0 - load}}))
"""


def cold_starts(command: list[str], runs: int, env: dict) -> dict:
    loads, walls, firsts = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise SystemExit(f"cold start run failed:\n{out.stderr[-3000:]}")
        report = json.loads(out.stdout.strip().splitlines()[-1])
        loads.append(report["load"])
        firsts.append(report["first"] * 1000)
        walls.append(wall)
    return {"imports_and_load_s": statistics.median(loads), "process_wall_s": statistics.median(walls),
            "first_request_ms": statistics.median(firsts), "runs": runs, "all_imports_and_load_s": loads}


def warm(function, event_one: dict, event_batch: dict, n_one: int, n_batch: int) -> dict:
    def timed(event, n):
        def call():
            assert function(event)["statusCode"] == 200

        times = time_calls(call, n, warmup=min(20, n))
        return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99), "mean_ms": statistics.fmean(times),
                "n": n}

    return {"one": timed(event_one, n_one), "batch32": timed(event_batch, n_batch)}


# ------------------------------------------------------------------------------------------------- load

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_test(models_dir: Path, n_requests: int, concurrency: int, texts: list[str]) -> dict:
    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(models_dir), "PYTHONPATH": str(REPO_ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "deployment.local", "--port", str(port), "--quiet"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/sentiment")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("the local server did not start")
            time.sleep(0.5)
        bodies = [json.dumps({"text": text}).encode() for text in texts]
        latencies, errors, lock = [], [], threading.Lock()
        local = threading.local()
        counter = iter(range(n_requests))

        def one(i):
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            start = time.perf_counter()
            try:
                connection.request("POST", "/sentiment", body=bodies[i % len(bodies)],
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                ok = response.status == 200 and b'"prediction"' in data
            except (OSError, http.client.HTTPException) as err:
                local.connection = None
                ok, data = False, str(err).encode()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors.append(data[:200].decode(errors="replace"))

        def worker():
            for i in counter:
                one(i)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        return {"requests": n_requests, "concurrency": concurrency, "errors": len(errors),
                "error_samples": errors[:3], "seconds": seconds, "requests_per_s": n_requests / seconds,
                "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                "max_ms": max(latencies)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


# ------------------------------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sentiment", help="bundle name in deployment/models (FastText)")
    parser.add_argument("--models-dir", type=Path, default=DEPLOYMENT / "models")
    parser.add_argument("--package-zip", type=Path, help="the serverless artifact (default: build it)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--warm-one", type=int, default=2000)
    parser.add_argument("--warm-batch", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "deployment.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    os.environ["MODELS_DIR"] = str(args.models_dir.resolve())
    os.environ["ORT_THREADS"] = "1"
    bundle = args.models_dir.resolve() / args.model
    meta = json.loads((bundle / "meta.json").read_text())
    nice = os.nice(0)
    python312 = lambda_python()
    texts = reviews(64)
    event_one = {"httpMethod": "POST", "body": json.dumps({"text": texts[0]})}
    event_batch = {"httpMethod": "POST", "body": json.dumps({"texts": texts[:32]})}
    results = {"benchmark": "deployment: ONNX Runtime handler vs torch eager", "model": meta["name"],
               "model_version": meta["version"], "architecture": meta["architecture"],
               "provisional_bundle": meta.get("provisional"),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "platform": platform.platform(), "cpu_count": os.cpu_count(), "niceness": nice,
               "python": {"venv": platform.python_version(), "lambda_package": python312},
               "versions": {"torch": torch.__version__}, "goals": GOALS,
               "review_chars": {"one": len(texts[0]), "batch32_mean": statistics.fmean(map(len, texts[:32]))}}
    import onnxruntime
    import spacy

    results["versions"].update(onnxruntime=onnxruntime.__version__, spacy=spacy.__version__)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # --- package
        zip_path = args.package_zip or build_package(python312)
        unzipped = scratch / "package"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(unzipped)
        if args.models_dir.resolve() != (DEPLOYMENT / "models").resolve():  # serve the chosen bundles
            shutil.rmtree(unzipped / "models")
            shutil.copytree(args.models_dir, unzipped / "models")
        package_mb = folder_mb(unzipped)
        import torch as torch_module

        torch_mb = folder_mb(Path(torch_module.__file__).parent)
        results["package_mb"] = {
            "onnx": package_mb, "onnx_zipped": zip_path.stat().st_size / 1e6,
            "torch_estimate": package_mb - folder_mb(unzipped / "onnxruntime") + torch_mb,
            "torch_dir_in_venv": torch_mb}
        # --- cold start
        clean_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
                     "MODELS_DIR": str(unzipped / "models"), "ORT_THREADS": "1"}
        print("cold starts...", flush=True)
        onnx_cold = cold_starts([python312, "-I", "-S", "-B", "-c",
                                 COLD_ONNX.format(package=str(unzipped), model=args.model)], args.cold_runs, clean_env)
        torch_handler_path = write_torch_handler(bundle, scratch)
        torch_cold = cold_starts([sys.executable, "-B", "-c",
                                  COLD_TORCH.format(repo=str(REPO_ROOT), folder=str(scratch))], args.cold_runs,
                                 {**clean_env, "OMP_NUM_THREADS": "1"})
        # --- warm latency, both in this process
        print("warm latency...", flush=True)
        from deployment import handler

        handler._models.clear()
        os.environ["SENTIMENT_MODEL"] = args.model
        onnx_warm = warm(lambda event: handler.sentiment(event, None), event_one, event_batch, args.warm_one,
                         args.warm_batch)
        sys.path.insert(0, str(scratch))
        import torch_handler

        torch_warm = warm(torch_handler.handle, event_one, event_batch, args.warm_one, args.warm_batch)
        # check they agree
        onnx_p = [p["probabilities"]["positive"] for p in
                  json.loads(handler.sentiment(event_batch, None)["body"])["predictions"]]
        torch_p = [p["probability"] if p["label"] == "positive" else 1 - p["probability"]
                   for p in json.loads(torch_handler.handle(event_batch)["body"])["predictions"]]
        results["max_probability_difference"] = max(abs(a - b) for a, b in zip(onnx_p, torch_p))
        del torch_handler_path
    results["onnx_runtime"] = {"cold": onnx_cold, "warm": onnx_warm}
    results["torch_eager"] = {"cold": torch_cold, "warm": torch_warm}
    # --- load
    print(f"load test: {args.requests:,} requests at concurrency {args.concurrency}...", flush=True)
    results["load"] = load_test(args.models_dir.resolve(), args.requests, args.concurrency, texts)
    results["goals_met"] = {
        "cold_start": onnx_cold["imports_and_load_s"] <= GOALS["cold_start_s"],
        "p50_one": onnx_warm["one"]["p50_ms"] <= GOALS["p50_one_ms"],
        "package": results["package_mb"]["onnx"] <= GOALS["package_mb"],
        "load_zero_errors": results["load"]["errors"] == 0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwritten {args.out}")
    return 0 if results["load"]["errors"] == 0 else 1


def print_table(r: dict) -> None:
    o, t = r["onnx_runtime"], r["torch_eager"]
    rows = [
        ("cold start: imports + load (s)", o["cold"]["imports_and_load_s"], t["cold"]["imports_and_load_s"],
         f"<= {GOALS['cold_start_s']}"),
        ("cold start: whole process (s)", o["cold"]["process_wall_s"], t["cold"]["process_wall_s"], ""),
        ("first request after load (ms)", o["cold"]["first_request_ms"], t["cold"]["first_request_ms"], ""),
        ("warm, 1 review: p50 (ms)", o["warm"]["one"]["p50_ms"], t["warm"]["one"]["p50_ms"],
         f"<= {GOALS['p50_one_ms']}"),
        ("warm, 1 review: p99 (ms)", o["warm"]["one"]["p99_ms"], t["warm"]["one"]["p99_ms"], ""),
        ("warm, 32 reviews: p50 (ms)", o["warm"]["batch32"]["p50_ms"], t["warm"]["batch32"]["p50_ms"], ""),
        ("warm, 32 reviews: p99 (ms)", o["warm"]["batch32"]["p99_ms"], t["warm"]["batch32"]["p99_ms"], ""),
        ("unzipped package (MB)", r["package_mb"]["onnx"], r["package_mb"]["torch_estimate"],
         f"<= {GOALS['package_mb']:.0f} (limit 250)"),
    ]
    print(f"\nDeployment benchmark: {r['model']} ({r['architecture']}, version {r['model_version']}"
          f"{', provisional' if r['provisional_bundle'] else ''}), {r['cpu_count']} CPUs, niceness {r['niceness']}"
          + (" (run under nice: timings are pessimistic, the machine was busy)" if r["niceness"] > 0 else ""))
    print(f"{'':34s} {'ONNX Runtime':>14s} {'torch eager':>14s}   goal")
    for name, a, b, goal in rows:
        print(f"{name:34s} {a:14.2f} {b:14.2f}   {goal}")
    load = r["load"]
    print(f"\nload: {load['requests']:,} requests, concurrency {load['concurrency']}, 127.0.0.1: "
          f"{load['errors']} errors, {load['requests_per_s']:.0f} req/s, p50 {load['p50_ms']:.1f} ms, "
          f"p99 {load['p99_ms']:.1f} ms, max {load['max_ms']:.1f} ms")
    print(f"ONNX Runtime vs torch probabilities: max difference {r['max_probability_difference']:.2e}")
    print("goals met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["goals_met"].items()))


if __name__ == "__main__":
    sys.exit(main())
