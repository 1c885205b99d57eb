"""Where and in what precision the network trains: the device, where the data lives, and
bf16 mixed precision.

Decisions, measured on a 2-core AVX-512 machine with torch 2.13 (``bench/``):

- **Device.** ``"auto"`` takes the GPU when torch sees one. The whole training table moves
  to the GPU when it fits in half of the free memory (indexing a resident tensor costs
  nothing); otherwise it stays in host memory and each mini-batch is copied across.
- **Threads.** dnnreg keeps torch's own choice, one thread per physical core, and never
  changes it while training. Changing the thread count inside a hot loop, or mixing
  NumPy's BLAS pool with torch's, was measured to collapse throughput.
- **bf16.** ``precision="bf16"`` runs the matrix multiplies under ``torch.autocast`` in
  bfloat16 (8 bits of mantissa, fp32's exponent range, so no loss scaling is needed,
  unlike fp16). The weights, the optimiser state, the loss and every prediction stay in
  fp32 (Micikevicius et al. 2018, "Mixed precision training"). On a CPU with native bf16
  instructions (AVX512-BF16 or AMX) this measured 1.4-1.6x the fp32 samples/s; on one
  without, autocast emulates bf16 and is slower than fp32, so dnnreg says so.
"""

from __future__ import annotations

import contextlib

import torch

from dnnreg.notices import warn
from dnnreg.options import DEVICES, PRECISIONS  # noqa: F401

GPU_DATA_SHARE = 0.5  # keep the table on the GPU if it takes at most this share of free memory


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; ``"cuda:N"`` a given GPU,
    ``"mps"`` Apple's GPU. A device this machine does not have is an error that names
    what it does have."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    wanted = torch.device(device)
    if wanted.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (wanted.index or 0) >= count:
            have = f"{count} CUDA GPU(s): cuda:0 to cuda:{count - 1}" if count else "no CUDA GPU"
            raise ValueError(
                f"device={device!r} is not on this machine ({have}); use 'auto' or 'cpu'"
            )
    if wanted.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device={device!r}: this machine has no MPS device; use 'auto' or 'cpu'")
    return wanted


def check_device_string(name: str, value) -> str | None:
    """The parameter check for ``device`` (what :func:`resolve_device` accepts, before
    asking the hardware): "auto", "cpu", "cuda", "cuda:N" or "mps"."""
    ok = isinstance(value, str) and (
        value in DEVICES or value == "mps" or (value.startswith("cuda:") and value[5:].isdigit())
    )
    if ok:
        return None
    return f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {name}={value!r}"


def data_device(nbytes: int, device: torch.device, free_bytes: int | None = None) -> torch.device:
    """Where the training table should live: on ``device`` when it is the CPU or when the
    table fits in :data:`GPU_DATA_SHARE` of the GPU's free memory, else in host memory
    (mini-batches are then copied to the GPU one at a time).

    >>> data_device(10**9, torch.device("cuda"), free_bytes=4 * 10**9).type
    'cuda'
    >>> data_device(3 * 10**9, torch.device("cuda"), free_bytes=4 * 10**9).type
    'cpu'
    """
    if device.type != "cuda":
        return device
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= GPU_DATA_SHARE * free_bytes else torch.device("cpu")


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def _cpu_capabilities() -> dict | None:
    """torch's public table of the CPU's instruction sets (``torch.cpu.get_capabilities``),
    or ``None`` on a torch without it or when it cannot answer."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is None:
        return None
    try:
        return dict(get())
    except (RuntimeError, AttributeError, TypeError):
        return None


def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 instructions, from torch's public capability table
    (AVX-512 BF16 or AMX on x86, BF16 on Arm); on a torch without it, the oneDNN probe it
    replaced (private, so guarded); False when neither answers."""
    caps = _cpu_capabilities()
    if caps is not None:
        return any(bool(caps.get(k)) for k in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    probe = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except (RuntimeError, AttributeError):
        return False


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX tile units for bf16 (Intel Sapphire Rapids and later): the
    hardware where ``precision="auto"`` picks bf16, because that is where it was measured
    to pay (``bench/results/defaults_study.md``)."""
    return bool((_cpu_capabilities() or {}).get("amx_bf16"))


# precision="auto" takes bf16 from this batch size up (see resolve_precision).
AUTO_BF16_MIN_BATCH = 32


def resolve_precision(precision: str, device: torch.device, batch_size: int) -> str:
    """``precision="auto"``: bf16 on a CPU with AMX for batches of at least
    :data:`AUTO_BF16_MIN_BATCH` rows, fp32 everywhere else.

    Measured on an AMX CPU (bench/results/defaults_study.md, nine tables, two seeds, the
    defaults against the defaults in bf16): from batch 45 up bf16 fits took 0.73-0.92x the
    time (California, batch 225: 0.73x) at the same test RMSE (ratios 0.985-1.004); at
    batch 16 they took 1.09-1.13x, because every step casts the weights to bf16 and so
    small a batch gains less from the faster multiplies than the casts cost. Elsewhere
    fp32: a CPU with only AVX-512 BF16 was not measured here, one without bf16 emulates it
    at several times fp32's cost, and on a GPU (an H100) bf16 was slower than fp32 for
    networks of this size."""
    if precision != "auto":
        return precision
    amx = device.type == "cpu" and cpu_has_amx()
    return "bf16" if amx and batch_size >= AUTO_BF16_MIN_BATCH else "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    """Warn when bf16 is asked for on hardware that would only emulate it."""
    if precision == "bf16" and not bf16_is_native(device):
        warn(
            f"precision='bf16' on a {device.type} without native bf16 instructions is "
            "emulated and slower than fp32; use precision='fp32'"
        )


def autocast(precision: str, device: torch.device):
    """The context that runs a forward pass in ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
