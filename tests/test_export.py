"""Model export: ONNX Runtime must agree with torch, bundles are JSON + ONNX with checksums."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from deploy_support import train_small

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fixture_reviews():
    """100 real reviews from the committed fixtures: both labels, short and long."""
    from helpers.data import read_imdb

    from deploy_support import FIXTURE_DATA

    test = read_imdb(FIXTURE_DATA)["test"]
    order = np.argsort([len(text) for text in test.texts])
    picked = sorted(set(order[:50].tolist()) | set(order[-50:].tolist()))  # the 50 shortest and 50 longest
    return [test.texts[i] for i in picked]


@pytest.mark.parametrize("name", ["sentiment", "sentiment-cnn", "question-type"])
def test_onnx_matches_torch(name, tmp_path, fixture_reviews):
    from helpers.export import check_parity, export_bundle

    model, encoding, kwargs, test_texts = train_small(name)
    texts = fixture_reviews if name != "question-type" else test_texts[:100]
    assert len(texts) == 100
    bundle = export_bundle(model, encoding, tmp_path / name, kwargs)
    worst = check_parity(model, encoding, bundle, texts, atol=1e-5)
    assert worst <= 1e-5
    # batch of one (no padding) and single short inputs agree too
    assert check_parity(model, encoding, bundle, ["Awful!", "ok", "a"], batch_size=1) <= 1e-5


def test_random_init_cnn_parity_on_reviews(tmp_path, fixture_reviews):
    """Untrained (random) weights: parity is about the export, not the training."""
    from helpers.encoding import TextEncoding
    from helpers.export import BundleInfo, check_parity, export_bundle
    from helpers.models import CNN
    from helpers.text import Tokenizer, Vocab

    tokenizer = Tokenizer()
    encoding = TextEncoding(tokenizer, Vocab.build(tokenizer(text) for text in fixture_reviews), min_length=5)
    model = CNN(len(encoding.vocab), 32, 10, [3, 4, 5], 1, 0.5, encoding.vocab.pad_index).eval()
    bundle = export_bundle(model, encoding, tmp_path / "cnn",
                           BundleInfo(name="cnn", task="sentiment", labels=["neg", "pos"]))
    assert check_parity(model, encoding, bundle, fixture_reviews) <= 1e-5


def test_bundle_contents(tmp_path):
    from helpers.export import export_bundle, read_bundle_meta
    from helpers.files import sha256_file
    from helpers.text import Vocab

    from deploy_support import TEST_PROVENANCE

    model, encoding, kwargs, _ = train_small("sentiment")
    bundle = export_bundle(model, encoding, tmp_path / "b", {**kwargs, "test_accuracy": 0.5})
    assert sorted(p.name for p in bundle.iterdir()) == ["meta.json", "model.onnx", "tokenizer.json", "vocab.json"]
    meta = read_bundle_meta(bundle)
    assert meta["task"] == "sentiment" and meta["labels"] == ["neg", "pos"]
    assert meta["display_labels"] == ["negative", "positive"]
    assert meta["tokenizer"]["bigrams"] is True and meta["tokenizer"]["min_length"] == 1
    assert meta["tokenizer"]["kind"] == "spacy-blank"
    assert meta["test_accuracy"] == 0.5 and meta["source_notebook"] == "tests (fixtures)"
    assert meta["created_at"] and meta["version"].endswith(meta["files"]["model.onnx"][:8])
    # provenance is what the caller passed, as it was, where the export used to compute it
    assert list(meta)[-4:] == ["created_at", "git_commit", "torch_version", "onnx_version"]
    assert {key: meta[key] for key in TEST_PROVENANCE} == TEST_PROVENANCE
    assert meta["tokenizer"] == encoding.settings() == json.loads((bundle / "tokenizer.json").read_text())
    for file, digest in meta["files"].items():
        assert sha256_file(bundle / file) == digest
    assert Vocab.load(bundle / "vocab.json").itos == encoding.vocab.itos
    for path in bundle.iterdir():  # nothing pickled: JSON files parse, the model is ONNX protobuf
        data = path.read_bytes()
        assert not data.startswith(b"\x80"), f"{path.name} looks like a pickle"
        if path.suffix == ".json":
            json.loads(data)
    import onnx

    graph = onnx.load(str(bundle / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["ids", "lengths"] and [o.name for o in graph.output] == ["logits"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
    assert dims == [["batch", "time"], ["batch"]]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in graph.input)
    assert max(o.version for o in onnx.load(str(bundle / "model.onnx")).opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_tampered_bundle_is_rejected(tmp_path):
    from helpers.export import export_bundle, read_bundle_meta

    model, encoding, kwargs, _ = train_small("question-type")
    bundle = export_bundle(model, encoding, tmp_path / "q", kwargs)
    (bundle / "vocab.json").write_text((bundle / "vocab.json").read_text().replace("<unk>", "<UNK>", 1))
    with pytest.raises(ValueError, match="sha256 of vocab.json"):
        read_bundle_meta(bundle)
    (bundle / "model.onnx").unlink()
    with pytest.raises(ValueError, match="missing model.onnx"):
        read_bundle_meta(bundle)


def test_wrong_output_count_is_refused_and_leaves_nothing(tmp_path):
    from helpers.export import export_bundle

    from dataclasses import replace

    model, encoding, kwargs, _ = train_small("question-type")
    with pytest.raises(ValueError, match="output"):
        export_bundle(model, encoding, tmp_path / "bad", {**kwargs, "task": "sentiment"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown task"):
        export_bundle(model, encoding, tmp_path / "bad", {**kwargs, "task": "topic"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"reads ids \[batch, time\]"):
        export_bundle(model, replace(encoding, batch_first=False), tmp_path / "bad", kwargs)
    with pytest.raises(ValueError, match="provenance cannot set meta.json's own keys files, name"):
        export_bundle(model, encoding, tmp_path / "bad", {**kwargs, "provenance": {"name": "x", "files": {}}})
    assert list(tmp_path.iterdir()) == []


def test_parity_check_refuses_a_bundle_encoded_otherwise(tmp_path):
    """The model's encoding and the bundle's must be the same; the message names every setting that differs."""
    from dataclasses import replace

    from helpers.export import check_parity, export_bundle
    from helpers.text import Tokenizer, Vocab

    model, encoding, kwargs, texts = train_small("question-type")
    bundle = export_bundle(model, encoding, tmp_path / "q", kwargs)
    assert check_parity(model, encoding, bundle, texts[:10]) <= 1e-5
    others = [(replace(encoding, min_length=5, bigrams=True), "(bigrams, min_length differ)"),
              (replace(encoding, tokenizer=Tokenizer(lowercase=True)), "(lowercase differ)"),
              (encoding.with_vocab(Vocab(encoding.vocab.itos[:-1])), "(vocab differ)")]
    for other, fragment in others:
        with pytest.raises(AssertionError, match=re.escape(fragment)):
            check_parity(model, other, bundle, texts[:10])


def test_a_students_own_model_class_exports(tmp_path, fixture_reviews):
    """No `fc` layer, outputs from a Sequential: the output count comes from running the model once."""
    import torch
    from torch import nn

    from helpers.encoding import TextEncoding
    from helpers.export import BundleInfo, check_parity, export_bundle, output_count
    from helpers.models import length_mask
    from helpers.text import Tokenizer, Vocab

    class MeanThenMLP(nn.Module):
        def __init__(self, vocab_size, pad_index, n_classes):
            super().__init__()
            self.words = nn.Embedding(vocab_size, 16, padding_idx=pad_index)
            self.score = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, n_classes))

        def forward(self, ids, lengths):
            mask = length_mask(lengths.to(ids.device), ids.shape[1]).unsqueeze(2)
            return self.score((self.words(ids) * mask).sum(1) / mask.sum(1).clamp(min=1))

    tokenizer = Tokenizer()
    vocab = Vocab.build(tokenizer(text) for text in fixture_reviews)
    encoding = TextEncoding(tokenizer, vocab)
    torch.manual_seed(0)
    model = MeanThenMLP(len(vocab), vocab.pad_index, 1).train()
    assert output_count(model) == 1 and model.training          # its training mode is left alone
    bundle = export_bundle(model, encoding, tmp_path / "mine",
                           BundleInfo("mine", "sentiment", ["neg", "pos"]), check_texts=fixture_reviews[:20])
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["architecture"] == "MeanThenMLP" and "git_commit" not in meta   # no provenance given, none made up
    assert check_parity(model, encoding, bundle, fixture_reviews) <= 1e-5
    three = MeanThenMLP(len(vocab), vocab.pad_index, 3)
    with pytest.raises(ValueError, match="needs 2 output"):
        export_bundle(three, encoding, tmp_path / "q", BundleInfo("q", "question-type", ["a", "b"]))


def off_unless_float32_on_cpu(inner):
    """`inner` standing for a model trained on a GPU: its forward in its own dtype, or under autocast,
    differs from the float32 CPU graph by 1e-4 (as lesson 4's CNN did with cuDNN's TF32 convolutions),
    and agrees with it exactly as a float32 CPU model outside autocast."""
    import torch
    from torch import nn

    class OffUnlessFloat32OnCPU(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, ids, lengths):
            logits = self.inner(ids, lengths)
            weight = self.inner.fc.weight
            if weight.dtype != torch.float32 or weight.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
                logits = logits.float() + 1e-4   # "its own device": another path, 1e-4 away
            return logits

    return OffUnlessFloat32OnCPU()


@pytest.mark.parametrize("left_in", ["float64", "bfloat16", "autocast"])
def test_parity_is_checked_against_the_float32_cpu_graph_and_leaves_the_model_alone(left_in, tmp_path,
                                                                                     fixture_reviews):
    """The GPU failure mode on a CPU: the model as the lesson holds it differs from its exported graph by
    about 1e-4; the check compares the graph with a float32 CPU copy instead, and still catches a real
    mismatch. The lesson's model keeps its dtype, training mode and weights."""
    import contextlib

    import onnxruntime
    import torch

    from helpers.encoding import TextEncoding
    from helpers.export import BundleInfo, check_parity, export_bundle
    from helpers.models import CNN
    from helpers.text import Tokenizer, Vocab

    tokenizer = Tokenizer()
    vocab = Vocab.build(tokenizer(text) for text in fixture_reviews)
    encoding = TextEncoding(tokenizer, vocab, min_length=5)
    torch.manual_seed(0)
    model = off_unless_float32_on_cpu(CNN(len(vocab), 32, 10, [3, 4, 5], 1, 0.5, vocab.pad_index))
    if left_in != "autocast":
        model = model.to(getattr(torch, left_in))
    model.train()
    dtype = model.inner.fc.weight.dtype
    before = {name: value.clone() for name, value in model.state_dict().items()}
    inside = torch.autocast("cpu", dtype=torch.bfloat16) if left_in == "autocast" else contextlib.nullcontext()
    with inside:
        bundle = export_bundle(model, encoding, tmp_path / "cnn", BundleInfo("cnn", "sentiment", ["neg", "pos"]),
                               check_texts=fixture_reviews[:20])
        worst = check_parity(model, encoding, bundle, fixture_reviews)
        # what the check compared before: the model as it is, which is 1e-4 away from the graph
        session = onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
        ids, lengths = encoding.encode(fixture_reviews[:20])
        model.eval()
        with torch.inference_mode():
            own = model(torch.from_numpy(ids), torch.from_numpy(lengths)).float().numpy()
        model.train()
    graph = session.run(["logits"], {"ids": ids, "lengths": lengths})[0]
    assert np.abs(own - graph).max() > 5e-5 and worst <= 1e-5
    assert model.training and model.inner.fc.weight.dtype == dtype and model.inner.fc.weight.device.type == "cpu"
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    with torch.no_grad():
        model.inner.fc.bias += 1e-3          # weights changed after the export: a real mismatch
    with pytest.raises(AssertionError, match="ONNX Runtime and torch differ by"):
        check_parity(model, encoding, bundle, fixture_reviews)
