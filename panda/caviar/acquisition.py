"""Acquisition functions: how promising a candidate point is under a surrogate.

scipy is imported on first call, so importing this module stays light.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def expected_improvement(
    mu: npt.ArrayLike,
    sigma: npt.ArrayLike,
    best: float,
    *,
    maximize: bool = True,
    xi: float = 0.0,
) -> npt.NDArray[np.float64]:
    """Return the expected improvement over ``best`` of a Gaussian belief.

    For maximising, with improvement I = mu - f(x*) - xi and z = I / sigma,
    EI = I Phi(z) + sigma phi(z), where Phi and phi are the standard normal CDF and
    density. Minimising uses I = f(x*) - mu - xi. Where sigma = 0 the belief is a
    point mass and EI = max(I, 0), the limit of the formula as sigma -> 0; no NaN is
    produced.

    Args:
        mu: surrogate means, any shape broadcastable with ``sigma``.
        sigma: surrogate standard deviations, >= 0.
        best: the best objective observed so far, f(x*).
        maximize: whether larger objectives are better.
        xi: a margin the improvement must beat; > 0 favours exploration.

    Returns:
        EI, >= 0, with the broadcast shape of ``mu`` and ``sigma``.

    Raises:
        ValueError: if a sigma is negative or NaN.
    """
    from scipy.special import ndtr  # type: ignore[import-untyped, unused-ignore]

    mean = np.asarray(mu, dtype=float)
    deviation = np.asarray(sigma, dtype=float)
    if np.any(~(deviation >= 0)):
        raise ValueError("sigma must be >= 0 everywhere (and not NaN)")

    improvement = (mean - best if maximize else best - mean) - xi
    improvement, deviation = np.broadcast_arrays(improvement, deviation)
    positive = deviation > 0
    with np.errstate(over="ignore", under="ignore"):
        z = np.divide(
            improvement, deviation, out=np.zeros_like(improvement), where=positive
        )
        density = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
        smooth = improvement * ndtr(z) + deviation * density

    # Where sigma underflows, z is +/-inf and the formula already equals max(I, 0);
    # sigma == 0 exactly takes the limit directly instead of dividing by zero.
    result = np.where(positive, smooth, np.maximum(improvement, 0.0))
    return np.maximum(result, 0.0).astype(np.float64)
