"""Dropout masks for every layer and ensemble member of a training step, drawn at once.

Dropout (Srivastava et al. 2014) zeroes each hidden unit with probability p during training
and scales the survivors by 1/(1-p), so a unit's expected output is unchanged and nothing
needs rescaling at evaluation ("inverted" dropout, what ``torch.nn.Dropout`` does).

Why not ``nn.Dropout`` on the CPU: it draws one Bernoulli variable per unit through torch's
Mersenne-Twister generator, and at tabular sizes that costs more than the layer itself
(measured here: 3.0 ms for the masks of one step of a 3x256 network at batch 256, against
0.29 ms for one of its 256x256x256 matrix multiplies). :class:`DropoutMasks` instead asks
NumPy's SFC64 generator (a small-state generator that passes the BigCrush and PractRand
test batteries) for raw 64-bit words, ~0.15 ms for the same step, and reads each word as
four 16-bit uniforms: a unit is kept when its 16 bits are at least ``round(p * 65536)``,
so the drop rate is p to within 2⁻¹⁷ (for p = 0.15 it is 9830/65536 = 0.149994). One call
covers every layer and member of the step, each unit getting its own 16 bits, so units,
layers and members are all drawn independently.

On a GPU torch's own dropout is fast (a counter-based Philox generator inside the kernel),
so there the blocks keep ``nn.Dropout``; so does any network not being trained by
:func:`dnnreg.training.loop.fit_model`, which seeds the masks from the fit's generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch

UNIFORM_LEVELS = 65536  # 16 random bits per unit
# bytes of a float -> the integer types that read its bits (torch's signed view, NumPy's)
_SAME_WIDTH_INTS = {
    2: (torch.int16, np.uint16),
    4: (torch.int32, np.uint32),
    8: (torch.int64, np.uint64),
}


class DropoutMasks:
    """Inverted-dropout masks (0 or ``1/(1-p)``) with drop probability ``p``, reproducible
    from ``seed``.

    Examples
    --------
    >>> masks = DropoutMasks(0.25, seed=0).draw([(2, 3), (4,)], torch.float32)
    >>> [tuple(m.shape) for m in masks]
    [(2, 3), (4,)]
    >>> {round(v, 4) for m in masks for v in m.flatten().tolist()} <= {0.0, 1.3333}
    True
    """

    def __init__(self, p: float, seed: int):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.scale = 1.0 / (1.0 - p)
        # A unit's 16 bits read as a signed int16 u - 32768, with u uniform on 0..65535:
        # keep iff u >= round(p * 65536), i.e. the signed value >= this threshold.
        self.threshold = round(p * UNIFORM_LEVELS) - UNIFORM_LEVELS // 2
        self.bits = np.random.SFC64(seed)
        self._patterns: dict = {}  # dtype -> (bits of the scale, their integer type)

    @property
    def drop_rate(self) -> float:
        """The exact probability that a unit is dropped: ``round(p·65536) / 65536``."""
        return (self.threshold + UNIFORM_LEVELS // 2) / UNIFORM_LEVELS

    def draw(self, shapes, dtype: torch.dtype) -> list[torch.Tensor]:
        """One mask per shape, all from a single draw of random words."""
        sizes = [math.prod(s) for s in shapes]
        total = sum(sizes)
        words = self.bits.random_raw((total + 3) // 4)  # uint64, four units per word
        keep = words.view(np.int16)[:total] >= self.threshold  # bool, one byte a unit
        # The mask's bits are built in NumPy, not torch: keep (0 or 1) times the bit pattern
        # of 1/(1-p) in ``dtype`` is that pattern or +0.0's (all zero bits), so one integer
        # multiply writes the float mask. torch's compare plus bool-to-float cast plus
        # scale cost 1.7 ms for the 1.6M units of a default step, this 0.35 ms; the values
        # are the same bits (tested against the plain compare-cast-scale).
        pattern, ints = self._pattern(dtype)
        mask = np.multiply(keep.view(np.uint8), pattern, dtype=ints)
        mask = torch.from_numpy(mask.view(ints)).view(dtype)
        return [m.view(s) for m, s in zip(mask.split(sizes), shapes)]

    def _pattern(self, dtype: torch.dtype) -> tuple[np.integer, type]:
        """The bits of ``1/(1-p)`` in ``dtype`` as an unsigned integer of its width, rounded
        exactly as torch rounds ``1.0 * scale`` in that dtype."""
        cached = self._patterns.get(dtype)
        if cached is None:
            value = torch.ones(1, dtype=dtype).mul_(self.scale)
            signed, ints = _SAME_WIDTH_INTS[value.element_size()]
            cached = (ints(value.view(signed).numpy().view(ints)[0]), ints)
            self._patterns[dtype] = cached
        return cached


class MaskedReLU(torch.autograd.Function):
    """``relu(z) · m`` for a dropout mask ``m ≥ 0``, in two passes and one new tensor each
    way: ``relu(z) · m = relu(z · m)`` because m is never negative, so the forward pass
    multiplies and clamps in place; the derivative is ``m`` where the output is positive and
    0 elsewhere (a kept unit with z > 0 is the only way to a positive output), so the
    backward pass multiplies and zeroes in place. Autograd's own ``relu`` then ``* m`` makes
    four tensors of the layer's size and saves two; this saves the output and the mask it
    already keeps. Same values (up to the sign of a zero); ReLU's derivative at 0 is 0, as
    torch's."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.mul(z, mask).clamp_min_(0.0)
        ctx.save_for_backward(out, mask)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out, mask = ctx.saved_tensors
        g = torch.mul(grad, mask)
        # threshold_backward written into g itself: g where out > 0, else 0
        torch.ops.aten.threshold_backward.grad_input(g, out, 0.0, grad_input=g)
        return g, None
