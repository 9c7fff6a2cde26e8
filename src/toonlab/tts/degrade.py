"""Degraded real speech: what an undertrained acoustic model does to a mel spectrogram, applied to real ones.

`degrade_log_mel` smooths a (T, n_mels) log-mel in time and frequency (Gaussian, `time_sigma` frames and
`freq_sigma` bands) and compresses its contrast toward each band's mean over the clip (`compression` = the share
of the deviation that is kept). The clip's mean log level, and so its gain, is kept. Judges are trained
on such degraded copies beside the clean ones, and every evaluation reports each judge on degraded real targets,
so a judge that decides by smoothness shows it.
"""

from __future__ import annotations

import numpy as np
import torch

TIME_SIGMA, FREQ_SIGMA, COMPRESSION = 1.5, 1.0, 0.7


def degrade_log_mel(
    log_mel: torch.Tensor,
    time_sigma: float = TIME_SIGMA,
    freq_sigma: float = FREQ_SIGMA,
    compression: float = COMPRESSION,
) -> torch.Tensor:
    """(T, n_mels) log-mel -> the same shape, smoothed and compressed (see the module docstring)."""
    from scipy.ndimage import gaussian_filter

    x = log_mel.detach().cpu().double().numpy()
    smooth = gaussian_filter(x, sigma=(time_sigma, freq_sigma), mode="nearest")
    mean = smooth.mean(axis=0, keepdims=True)  # (1, n_mels)
    out = mean + compression * (smooth - mean)
    return torch.from_numpy(np.ascontiguousarray(out)).to(log_mel.dtype)
