"""helpers.precision: the one precision rule (bfloat16 where native, float16 with a scaler on older GPUs)."""
import pytest
import torch

from helpers.precision import describe_precision, gradient_scaler, needs_gradient_scaler, training_precision


def test_precision_resolution():
    assert training_precision("cpu", "fp32") == "fp32"
    assert training_precision("cpu", "bf16") == "bf16"      # an explicit choice is kept
    assert training_precision("cpu", "fp16", flags={"avx512_bf16"}) == "fp16"
    assert training_precision("cuda", "fp16", capability=(9, 0)) == "fp16"   # the fp16 path on a bf16 GPU
    assert training_precision("cuda", "fp32", capability=(7, 5)) == "fp32"
    assert training_precision("cpu", flags=set()) == "fp32"
    assert training_precision("cpu", flags={"avx512f", "amx_bf16"}) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of 'auto', 'bf16', 'fp16', 'fp32', not 'half'"):
        training_precision("cpu", "half")


def test_the_environment_does_not_choose_the_precision(monkeypatch):
    monkeypatch.setenv("SENTIMENT_PRECISION", "bf16")   # read by the course layer, never by the library
    assert training_precision("cpu", flags={"avx512f"}) == "fp32"


@pytest.mark.parametrize("capability, expected", [((6, 1), "fp16"),    # P100 class
                                                  ((7, 0), "fp16"),    # V100
                                                  ((7, 5), "fp16"),    # T4 (Colab): bf16 only emulated
                                                  ((8, 0), "bf16"),    # A100
                                                  ((8, 6), "bf16"),
                                                  ((9, 0), "bf16")])   # H100, H200
def test_cuda_trains_in_bf16_from_compute_capability_8_and_in_fp16_below(capability, expected):
    assert training_precision("cuda", capability=capability) == expected


def test_only_fp16_gets_a_gradient_scaler():
    scaler = gradient_scaler("cpu", "fp16")
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    assert gradient_scaler("cpu", "bf16") is None and gradient_scaler("cuda", "fp32") is None


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "fp32"),   # plain AVX512: mkldnn would say yes
    ({"avx512f", "avx512_bf16"}, "bf16"),
    ({"avx512f", "amx_tile", "amx_bf16"}, "bf16"),
    ({"asimd", "bf16"}, "fp32"),                                  # ARM's flag is not one we measured
    (set(), "fp32")])
def test_cpu_bf16_needs_amx_or_avx512_bf16(flags, expected):
    assert training_precision("cpu", flags=flags) == expected


def test_only_fp16_is_described_with_its_scaler():
    assert [needs_gradient_scaler(p) for p in ("bf16", "fp16", "fp32")] == [False, True, False]
    assert describe_precision("fp16") == "fp16 with a gradient scaler" and describe_precision("bf16") == "bf16"
