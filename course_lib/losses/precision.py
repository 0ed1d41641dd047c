"""The precision every loss, gather and synced BatchNorm computes in: at least float32.

Under autocast the embeddings arrive in float16 or bfloat16; sums over a batch in those lose digits (bfloat16 keeps
8 bits), so they are widened to float32. float32 and float64 pass unchanged: a float64 check (the distributed
parity test) stays float64 end to end.
"""
from __future__ import annotations

import torch


def widen(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if it is a half type (float16, bfloat16), else ``t`` itself.

    Example:
        >>> widen(torch.ones(2, dtype=torch.bfloat16)).dtype, widen(torch.ones(2, dtype=torch.float64)).dtype
        (torch.float32, torch.float64)
    """
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
