"""Device placement, bf16 mixed precision and torch.compile: each speed option trains the
same model to the same quality, and does what it says (bf16 matmuls, fp32 weights)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from dnnreg import DNNRegressor
from dnnreg.training.devices import (
    bf16_is_native,
    data_device,
    resolve_device,
    resolve_precision,
)


def _wave(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.05 * rng.normal(size=n)


def _fit(**kw):
    X, y = _wave()
    params = dict(hidden_layer_sizes=(64, 64), n_ensemble=2, max_iter=40, random_state=0)
    model = DNNRegressor(**{**params, **kw}).fit(X[:500], y[:500])
    return model, r2_score(y[500:], model.predict(X[500:]))


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_the_table_stays_in_host_memory_when_the_gpu_is_short():
    gpu = torch.device("cuda")
    assert data_device(100, gpu, free_bytes=1000) == gpu
    assert data_device(600, gpu, free_bytes=1000).type == "cpu"  # over half the free memory
    assert data_device(10**12, torch.device("cpu")).type == "cpu"


def test_bf16_multiplies_in_bf16_and_keeps_fp32_weights_and_quality():
    seen = set()
    model = DNNRegressor(hidden_layer_sizes=(64, 64), n_ensemble=2, max_iter=1, random_state=0)
    original = DNNRegressor._build_model

    def build_with_probe(self):
        net = original(self)
        net.blocks[0].linear.register_forward_hook(
            lambda mod, inp, out: seen.add((mod.training, out.dtype))
        )
        return net

    DNNRegressor._build_model = build_with_probe
    try:
        model.set_params(precision="bf16").fit(*_wave())
    finally:
        DNNRegressor._build_model = original
    assert (True, torch.bfloat16) in seen  # training steps ran in bf16
    assert (False, torch.float32) in seen  # validation (and prediction) in fp32
    assert all(p.dtype == torch.float32 for p in model.model_.parameters())

    _, r2_fp32 = _fit()
    bf16, r2_bf16 = _fit(precision="bf16")
    assert bf16.predict(_wave()[0][:5]).dtype == np.float64
    assert r2_fp32 > 0.95 and r2_bf16 > 0.95
    assert abs(r2_bf16 - r2_fp32) < 0.02, (r2_fp32, r2_bf16)


def test_bf16_on_emulating_hardware_warns(monkeypatch):
    from dnnreg.notices import DNNRegWarning

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert not bf16_is_native(torch.device("cpu"))
    with pytest.warns(DNNRegWarning, match="emulated and slower than fp32"):
        DNNRegressor(hidden_layer_sizes=(8,), max_iter=1, precision="bf16", device="cpu").fit(
            *_wave(50)
        )


@pytest.mark.parametrize(
    "capabilities, expected",
    [({"amx_bf16": True, "avx512_bf16": True}, "bf16"), ({"avx512_bf16": True}, "fp32"),
     ({"avx2": True}, "fp32")],
)  # fmt: skip
def test_auto_precision_is_bf16_only_where_amx_multiplies_it(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu, 256) == expected
    assert resolve_precision("auto", cpu, 16) == "fp32"  # the casts cost more than they save
    assert resolve_precision("auto", torch.device("cuda"), 256) == "fp32"  # slower there
    assert resolve_precision("fp32", cpu, 256) == "fp32"
    assert resolve_precision("bf16", cpu, 16) == "bf16"


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_is_recorded_and_trains_as_recorded(monkeypatch, tmp_path, amx):
    from dnnreg import load, save

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx})
    seen = set()
    model = DNNRegressor(
        hidden_layer_sizes=(16,), max_iter=1, precision="auto", batch_size=32, random_state=0
    )
    original = DNNRegressor._build_model

    def build_with_probe(self):
        net = original(self)
        net.blocks[0].linear.register_forward_hook(
            lambda mod, inp, out: seen.add(out.dtype) if mod.training else None
        )
        return net

    monkeypatch.setattr(DNNRegressor, "_build_model", build_with_probe)
    model.fit(*_wave(100))
    expected = "bf16" if amx else "fp32"
    assert model.resolved_["precision"] == expected
    assert seen == {torch.bfloat16 if amx else torch.float32}  # the training steps' dtype
    save(model, tmp_path / "m")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": not amx})
    assert load(tmp_path / "m").resolved_["precision"] == expected  # recorded, not re-derived


def test_compiled_training_reaches_the_eager_quality():
    from torch._dynamo.utils import counters

    _, r2_eager = _fit(max_iter=15)
    counters.clear()
    _, r2_compiled = _fit(max_iter=15, compile=True)
    assert counters["stats"]["unique_graphs"] >= 1  # the steps did run through the compiler
    assert r2_eager > 0.9 and abs(r2_compiled - r2_eager) < 0.02, (r2_eager, r2_compiled)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_training_from_host_memory_equals_gpu_resident(monkeypatch):
    _, resident = _fit(device="cuda")
    monkeypatch.setattr(
        "dnnreg.training.devices.GPU_DATA_SHARE", 0.0
    )  # force batch-by-batch copies
    _, streamed = _fit(device="cuda")
    assert resident == pytest.approx(streamed, abs=1e-6)
    _, cpu = _fit(device="cpu")
    assert abs(resident - cpu) < 0.02


def test_bf16_detection_uses_the_public_table_and_falls_back(monkeypatch):
    """torch.cpu.get_capabilities is the public answer; without it (an older torch) the
    private oneDNN probe, guarded; without either, False."""
    from dnnreg.training.devices import cpu_has_bf16

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert cpu_has_bf16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": False})
    assert not cpu_has_bf16()
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert cpu_has_bf16()
    # torch.ops namespaces resolve an op again on every lookup, so a deleted attribute comes
    # back (and answers for this CPU): a namespace without the probe stands in for a torch
    # that lacks it
    monkeypatch.setattr(torch.ops, "mkldnn", type("NoProbe", (), {})())
    assert not cpu_has_bf16()
