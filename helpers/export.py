"""Export a trained lesson model as a deployment bundle: ONNX model + JSON, nothing pickled.

A bundle is a folder:

    model.onnx      the network, inputs `ids` int64 [batch, time] and `lengths` int64 [batch]
                    (both with dynamic axes), output `logits` float32 [batch, n_outputs]
    vocab.json      the vocabulary (`Vocab.save`: itos, specials, default token)
    tokenizer.json  the encoding's settings (`TextEncoding.settings()`: `Tokenizer.config` plus
                    `bigrams` and `min_length`)
    meta.json       task, labels, tokenizer settings, source notebook and its test accuracy,
                    sha256 of every other file, created_at, version, and the provenance the
                    caller passes (the course passes git commit, torch and onnx versions)

The deployed handler (deployment/handler.py) needs no torch: it reads these files,
checks the sha256 sums, encodes with the bundle's `helpers.encoding.TextEncoding` exactly as
in training and runs the model with ONNX Runtime. `check_parity` compares ONNX Runtime with torch. Both the
export and the check use a float32 CPU copy of the model (`float32_cpu_copy`): the graph
ONNX Runtime runs is float32 on a CPU, whatever device and precision the lesson trained in,
and the lesson's own model is left as it was.

Where a bundle goes is the caller's choice (`destination`): the notebooks ask the course
layer (`run.bundle_dir(name)`), which keeps quick runs away from the committed bundles.
What a bundle says about itself is one `BundleInfo`; how its texts become ids is the
`TextEncoding` the model was trained with.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bundle import META_FILE, MODEL_FILE, output_width, read_meta, verify_files
from .encoding import TextEncoding
from .files import atomic_path, sha256_file

BUNDLE_FORMAT = 1
OPSET = 17

# What each task's outputs mean, for the handler and the website.
TASKS = {
    "sentiment": {"output": "sigmoid", "description": "IMDb movie review sentiment"},
    "question-type": {"output": "softmax", "description": "TREC question type (coarse classes)"},
}
READABLE_LABELS = {"neg": "negative", "pos": "positive"}

# The keys export_bundle writes itself: a provenance value cannot replace them.
META_KEYS = frozenset({"format", "name", "version", "task", "description", "output", "labels", "display_labels",
                       "architecture", "vocab_size", "tokenizer", "onnx", "source_notebook", "profile",
                       "test_accuracy", "provisional", "notes", "files", "created_at"})


@dataclass
class BundleInfo:
    """What a bundle says about itself besides its files.

    `name`: the bundle's name ("sentiment"); `task`: a key of TASKS ("sentiment": one
    logit, sigmoid; "question-type": one logit per label, softmax); `labels`: names in
    output order (IMDb's "neg"/"pos", TREC's coarse classes); the rest is for meta.json:
    which notebook and profile made it, its test accuracy, and `provenance`, values the
    caller computed (the course layer: "git_commit", "torch_version", "onnx_version"),
    written into meta.json as they are, after "created_at".
    """

    name: str
    task: str
    labels: Sequence[str]
    source_notebook: str | None = None
    profile: str | None = None
    test_accuracy: float | None = None
    provisional: bool = False
    notes: str | None = None
    provenance: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        self.labels = [str(label) for label in self.labels]
        self.provenance = dict(self.provenance)
        clashes = sorted(set(self.provenance) & META_KEYS)
        if clashes:
            raise ValueError(f"provenance cannot set meta.json's own keys {', '.join(clashes)}")

    @property
    def n_outputs(self) -> int:
        """How many logits a model for this task and these labels must give (`helpers.bundle.output_width`)."""
        return output_width(TASKS[self.task]["output"], self.labels)


def dummy_batch(min_length: int = 1):
    """(ids int64 [2, time], lengths int64 [2]): two texts of different lengths, at least `min_length`."""
    import torch  # deferred: the course layer imports this module without torch; exporting needs it

    width = max(min_length, 6)
    return torch.ones((2, width), dtype=torch.int64), torch.tensor([width, max(min_length, 1)], dtype=torch.int64)


def output_count(model, min_length: int = 1) -> int:
    """The number of logits `model` gives per text, found by running it once in eval mode on a
    dummy batch on the CPU (any lesson model, or a student's own class, with `forward(ids, lengths)`)."""
    import torch  # deferred: the course layer imports this module without torch; exporting needs it

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ids, lengths = dummy_batch(min_length)
            logits = model(ids.to(device), lengths)
    finally:
        model.train(was_training)
    if logits.dim() != 2 or logits.shape[0] != 2:
        raise ValueError(f"{type(model).__name__} gives logits of shape {tuple(logits.shape)} for 2 texts; "
                         "an exported model must give [batch, n_outputs]")
    return int(logits.shape[1])


@contextlib.contextmanager
def float32_cpu_copy(model):
    """A copy of `model` in float32 on the CPU, in eval mode, for use inside a `with` block that turns
    autocast off: what ONNX Runtime runs on the CPU (and on Lambda), whatever `model` is.

    A model on a GPU computes differently (TF32 convolutions, other kernels: about 1e-4 on lesson 4's
    logits), a model in bfloat16, or called under autocast, more so. `model` itself keeps its device,
    dtype, training mode and weights: the lesson goes on using it.
    """
    import torch  # deferred: the course layer imports this module without torch; exporting needs it

    with torch.autocast("cpu", enabled=False):
        yield copy.deepcopy(model).float().cpu().eval()


# ---- saved cells: generated by `python -m helpers.sync` from the notebooks' #@save cells; edit those ----

# ---- notebooks/07_deployment.ipynb, cell save-export-export-onnx ----
def export_onnx(model, path: str | os.PathLike | None = None, min_length: int = 1, opset: int = OPSET) -> bytes:
    """The model as ONNX bytes (also written to `path` if given), traced from `float32_cpu_copy(model)`.

    Uses the TorchScript exporter (`dynamo=False`): it handles these small models with
    dynamic batch and time axes and needs no onnxscript. `model` itself is left as it was.
    """
    import torch  # deferred: the course layer imports this module without torch; exporting needs it

    ids, lengths = dummy_batch(min_length)
    buffer = io.BytesIO()
    with float32_cpu_copy(model) as cpu_model, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            cpu_model, (ids, lengths), buffer, input_names=["ids", "lengths"], output_names=["logits"],
            dynamic_axes={"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset, dynamo=False, do_constant_folding=True)
    data = buffer.getvalue()
    if path is not None:
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
    return data

# ---- end of saved cells ----


def export_bundle(model, encoding: TextEncoding, destination: str | os.PathLike, info: BundleInfo | Mapping, *,
                  check_texts: Sequence[str] | None = None) -> Path:
    """Write the bundle folder `destination` atomically (a half-written bundle is never left) and return it.

    `model`: the trained model itself (any class with `forward(ids [batch, time], lengths)`
    -> logits [batch, n_outputs]); `encoding`: the `TextEncoding` it was trained with, batch-first
    (a bundle's model reads ids [batch, time]); its output count must fit `info` (a `BundleInfo`,
    or a dict of its fields). `check_texts`: when given, the export is checked with `check_parity`
    on them before it is kept.
    """
    import onnx  # deferred: onnx (and torch, through export_onnx) only when a lesson exports

    info = info if isinstance(info, BundleInfo) else BundleInfo(**info)
    if not encoding.batch_first:
        raise ValueError("a bundle's model reads ids [batch, time]: export a model trained with a batch-first "
                         "encoding (TextEncoding(..., batch_first=True))")
    name, task, labels, min_length = info.name, info.task, info.labels, encoding.min_length
    n_outputs = output_count(model, min_length)
    if n_outputs != info.n_outputs:
        raise ValueError(f"a {task} model needs {info.n_outputs} output(s) for labels {labels}, "
                         f"this one has {n_outputs}")
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        tmp.mkdir(parents=True)
        onnx_bytes = export_onnx(model, tmp / MODEL_FILE, min_length=min_length)
        onnx.checker.check_model(onnx.load_from_string(onnx_bytes))
        written = encoding.save(tmp)
        files = {file: sha256_file(tmp / file) for file in (MODEL_FILE, *written)}
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        meta = {
            "format": BUNDLE_FORMAT,
            "name": name,
            "version": f"{created[:10].replace('-', '')}-{files[MODEL_FILE][:8]}",
            "task": task,
            "description": TASKS[task]["description"],
            "output": TASKS[task]["output"],
            "labels": list(labels),
            "display_labels": [READABLE_LABELS.get(label, label) for label in labels],
            "architecture": type(model).__name__,
            "vocab_size": len(encoding.vocab),
            "tokenizer": encoding.settings(),
            "onnx": {"file": MODEL_FILE, "opset": OPSET, "inputs": {"ids": "int64 [batch, time]",
                                                                     "lengths": "int64 [batch]"},
                     "outputs": {"logits": f"float32 [batch, {n_outputs}]"}},
            "source_notebook": info.source_notebook,
            "profile": info.profile,
            "test_accuracy": None if info.test_accuracy is None else float(info.test_accuracy),
            "provisional": bool(info.provisional),
            "notes": info.notes,
            "files": files,
            "created_at": created,
            **info.provenance,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if check_texts:
            check_parity(model, encoding, tmp, check_texts)
    return destination   # the caller says where it went (the course layer in words, not a machine path)


def read_bundle_meta(bundle: str | os.PathLike, verify: bool = True) -> dict:
    """meta.json of a bundle, checked by the handler's rules (`helpers.bundle.read_meta`: every file listed
    with a sha256, plain names inside the bundle, `onnx.file` among them); with `verify`, every listed file
    is also checked (present, inside the bundle, sha256). Raises `helpers.bundle.BundleError` (a ValueError)."""
    meta = read_meta(bundle)
    if verify:
        verify_files(bundle, meta)
    return meta


def check_parity(model, encoding: TextEncoding, bundle: str | os.PathLike, texts: Sequence[str], *,
                 atol: float = 1e-5, batch_size: int = 32) -> float:
    """Run `texts` through torch and through the bundle with ONNX Runtime; return the largest logit
    difference, raising AssertionError above `atol`. The bundle's encoding (`TextEncoding.from_bundle`)
    must equal `encoding`, the one the model was trained with (AssertionError naming the settings that
    differ); texts are then encoded by it.

    The torch side is `float32_cpu_copy(model)`: the float32 CPU graph that ONNX Runtime runs, so a
    model trained on a GPU or in 16 bits is held to the same tolerance as one trained on a CPU
    (a real difference, such as weights changed after the export, still fails). `model` itself
    keeps its device, dtype, training mode and weights."""
    import onnxruntime  # deferred: ONNX Runtime and torch only when a lesson checks an export
    import torch  # deferred: the course layer imports this module without torch; exporting needs it

    bundle = Path(bundle)
    meta = read_bundle_meta(bundle)
    bundled = TextEncoding.from_bundle(bundle, meta)
    if bundled != encoding:
        raise AssertionError(f"the bundle {bundle} encodes texts differently from the model's encoding "
                             f"({', '.join(bundled.differences(encoding))} differ)")
    session = onnxruntime.InferenceSession(str(bundle / meta["onnx"]["file"]), providers=["CPUExecutionProvider"])
    worst = 0.0
    with float32_cpu_copy(model) as reference, torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            ids, lengths = bundled.encode(texts[start:start + batch_size])
            expected = reference(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
            got = session.run(["logits"], {"ids": ids, "lengths": lengths})[0]
            worst = max(worst, float(np.abs(expected - got).max()))
    if worst > atol:
        raise AssertionError(f"ONNX Runtime and torch differ by {worst:.2e} (> {atol:.0e}) on the bundle {bundle}")
    return worst
