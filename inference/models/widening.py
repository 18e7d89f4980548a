"""Function-preserving widening of a trained network's weights (Net2Net-style, Chen, Goodfellow
and Shlens 2016, with zero links instead of split units).

Every tensor of the wider network keeps the trained values in its leading channels. The added
channels keep the wider network's own fresh initialisation for their incoming weights, and every
weight from an added channel into an original one is zero, so the original channels (and the
heads, which read only them) compute exactly what they did: the output is unchanged, while the
gradients on those zero links are not zero, so training puts the added capacity to use from the
trained network's accuracy onwards.  Used by hourglass.widen and TemporalLifter.load_widened.
"""
from __future__ import annotations

import torch


def widen_state(src: dict, dst: dict) -> dict:
    """Copy the trained tensors `src` into the leading slices of the wider network's freshly
    initialised `dst` (in place; returned).  Weight tensors (2+ dims, out x in x ...) get zero
    links from the added input channels into the original output channels.  Only the channel
    dimensions (the first two) may grow: the same tensors, the same kernels, or ValueError."""
    if set(src) != set(dst):
        raise ValueError(f"widen: the networks differ in their tensors ({sorted(set(src) ^ set(dst))[:4]}...)")
    with torch.no_grad():
        for name, t in dst.items():
            s = src[name]
            if s.shape == t.shape:
                t.copy_(s)
                continue
            if (s.dim() != t.dim() or s.shape[2:] != t.shape[2:]
                    or any(a > b for a, b in zip(s.shape, t.shape))):
                raise ValueError(f"widen: {name} {tuple(s.shape)} does not fit in {tuple(t.shape)}")
            if t.dim() >= 2:
                t[: s.shape[0], s.shape[1]:] = 0
            t[tuple(slice(0, n) for n in s.shape)] = s
    return dst
