"""Tests for expected improvement against its closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm  # type: ignore[import-untyped, unused-ignore]

from panda.caviar.acquisition import expected_improvement


def _closed_form(mu: float, sigma: float, best: float) -> float:
    """EI for maximising, written out independently with scipy.stats.norm."""
    z = (mu - best) / sigma
    return float((mu - best) * norm.cdf(z) + sigma * norm.pdf(z))


@pytest.mark.parametrize(
    ("mu", "sigma", "best"),
    [
        (1.0, 1.0, 0.0),
        (0.0, 1.0, 0.0),
        (-1.0, 0.5, 0.0),
        (2.5, 0.1, 3.0),
        (-7.0, 3.0, -6.0),
        (10.0, 2.0, 4.0),
    ],
)
def test_expected_improvement_known_values_match_closed_form(
    mu: float, sigma: float, best: float
) -> None:
    result = expected_improvement(np.array([mu]), np.array([sigma]), best)

    assert result[0] == pytest.approx(_closed_form(mu, sigma, best), rel=1e-12)


def test_expected_improvement_vector_matches_closed_form_elementwise() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=100), rng.uniform(0.01, 2.0, size=100)

    result = expected_improvement(mu, sigma, 0.3)

    expected = [_closed_form(m, s, 0.3) for m, s in zip(mu, sigma, strict=True)]
    assert result.shape == (100,)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-15)


def test_expected_improvement_minimize_mirrors_maximize() -> None:
    mu, sigma = np.array([0.2, 1.0, 3.0]), np.array([0.5, 0.1, 1.0])

    minimized = expected_improvement(mu, sigma, 1.0, maximize=False)

    expected = [_closed_form(-m, s, -1.0) for m, s in zip(mu, sigma, strict=True)]
    np.testing.assert_allclose(minimized, expected, rtol=1e-12)


def test_expected_improvement_xi_shifts_incumbent() -> None:
    result = expected_improvement(np.array([1.0]), np.array([0.7]), 0.2, xi=0.3)

    assert result[0] == pytest.approx(_closed_form(1.0, 0.7, 0.5), rel=1e-12)


@pytest.mark.parametrize("sigma", [1e-3, 1e-8, 1e-12, 1e-300, 5e-324, 0.0])
def test_expected_improvement_sigma_to_zero_gives_positive_part(sigma: float) -> None:
    mu = np.array([2.0, 1.0, 0.5, 1.0 + 1e-9])
    best = 1.0

    with np.errstate(all="raise"):
        result = expected_improvement(mu, np.full(4, sigma), best)

    assert np.all(np.isfinite(result))
    # The gap to max(mu - best, 0) is at most sigma * phi(0), which vanishes.
    np.testing.assert_allclose(
        result, np.maximum(mu - best, 0.0), atol=sigma * norm.pdf(0) + 1e-15
    )


def test_expected_improvement_sigma_zero_is_exact_positive_part() -> None:
    result = expected_improvement([3.0, 1.0, -2.0], [0.0, 0.0, 0.0], 1.0)

    assert result.tolist() == [2.0, 0.0, 0.0]


def test_expected_improvement_negative_sigma_raises_value_error() -> None:
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        expected_improvement([0.0], [-1.0], 0.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        expected_improvement([0.0], [float("nan")], 0.0)


def test_expected_improvement_scalars_broadcast_to_zero_dim() -> None:
    result = expected_improvement(1.0, 1.0, 0.0)

    assert result.shape == ()
    assert float(result) == pytest.approx(_closed_form(1.0, 1.0, 0.0))
