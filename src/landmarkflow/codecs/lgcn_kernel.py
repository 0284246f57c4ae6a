"""The LGCN blur kernel K (docs/models.md §4.1) and the decode filters built from it, in numpy alone: the model's
params validate against these sizes, and the codec and the model's blur are built from them, without torch.

Kernel. The authors ship K only as 45 x 45 numbers whose definition is unknown; we compute it from the 3-Gaussian
fit of §4.1, K(dx, dy) = sum_i a_i exp(-(dx^2 + dy^2) / (2 sigma_i^2)), within 0.008 of the released numbers. A sum
of isotropic Gaussians is a sum of 3 separable (outer-product) kernels, which the model uses for a cheap exact
blur. `kernel_size` other than 45 scales every sigma by (kernel_size - 1) / 44, a kernel scaled to a smaller input.
"""

from __future__ import annotations

import numpy as np

KERNEL_AMPLITUDES = (0.2215, 0.3424, 0.4283)
KERNEL_SIGMAS = (1.12, 3.87, 7.93)
"""The 3-Gaussian fit of the released 45 x 45 kernel (docs/models.md §4.1): max abs error 0.008, RMS 0.0018."""
PAPER_KERNEL_SIZE = 45
PATCH = 7
"""Side of the decode patch: 3 x 3 label pixels plus 2 pixels of context on each side."""


def kernel_sigmas(kernel_size: int) -> np.ndarray:
    """The three sigmas of a kernel of side `kernel_size`: the paper's, scaled with the kernel radius."""
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
    return np.asarray(KERNEL_SIGMAS) * (kernel_size - 1) / (PAPER_KERNEL_SIZE - 1)


def kernel_profiles(kernel_size: int) -> np.ndarray:
    """(3, kernel_size) 1-D Gaussian factors, peak 1: K = sum_i a_i outer(profile_i, profile_i)."""
    radius = (kernel_size - 1) // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    sigmas = kernel_sigmas(kernel_size)
    return np.exp(-(offsets[None, :] ** 2) / (2.0 * sigmas[:, None] ** 2))


def lgcn_kernel(kernel_size: int = PAPER_KERNEL_SIZE) -> np.ndarray:
    """(kernel_size, kernel_size) float64 blur kernel K, peak ~1 at the centre."""
    profiles = kernel_profiles(kernel_size)
    return np.einsum("i,iy,ix->yx", np.asarray(KERNEL_AMPLITUDES), profiles, profiles)


def _kernel_at(dx: np.ndarray, dy: np.ndarray, kernel_size: int) -> np.ndarray:
    """K at integer offsets (dx, dy), zero outside the kernel's square support."""
    radius = (kernel_size - 1) // 2
    sigmas = kernel_sigmas(kernel_size)
    r2 = (dx**2 + dy**2)[..., None]
    values = (np.asarray(KERNEL_AMPLITUDES) * np.exp(-r2 / (2.0 * sigmas**2))).sum(-1)
    return np.where((np.abs(dx) <= radius) & (np.abs(dy) <= radius), values, 0.0)


def decode_filters(kernel_size: int) -> np.ndarray:
    """(PATCH, PATCH, 3, PATCH*PATCH) float64: for the argmax at (row oy, col ox) of the patch, the filters whose
    dot products with the flattened patch are the label mass, and its first moments in x and y about the argmax."""
    filters = np.zeros((PATCH, PATCH, 3, PATCH * PATCH))
    rows, cols = np.meshgrid(np.arange(PATCH), np.arange(PATCH), indexing="ij")
    label = [(by, bx) for by in (-1, 0, 1) for bx in (-1, 0, 1)]
    moments = np.array([[1.0] * 9, [bx for _, bx in label], [by for by, _ in label]])
    for oy in range(PATCH):
        for ox in range(PATCH):
            design = np.stack(
                [_kernel_at(cols - ox - bx, rows - oy - by, kernel_size).ravel() for by, bx in label], axis=1
            )
            filters[oy, ox] = moments @ np.linalg.pinv(design)
    return filters
