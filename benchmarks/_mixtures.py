"""Gaussian mixtures with a known density that no test uses, shared by the
benchmarks that score densities and generators on them, the per-mode shares
their samples hold, and pairs of mixtures whose log ratio is known, for the
density-ratio benchmarks."""

from __future__ import annotations

import numpy as np

from skot.datasets import GaussianMixture


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def four_anisotropic() -> GaussianMixture:
    """Weights 0.4, 0.3, 0.2, 0.1; rotated elongated covariances and one tight
    round component (standard deviations from 0.05 to 0.8)."""
    shapes = [(0.3, (0.5, 0.05)), (1.2, (0.2, 0.2)), (2.0, (0.8, 0.1)), (0.0, (0.05, 0.05))]
    covs = [_rotation(a) @ np.diag(v) @ _rotation(a).T for a, v in shapes]
    return GaussianMixture(
        weights=np.array([0.4, 0.3, 0.2, 0.1]),
        means=np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5], [1.5, 3.0]]),
        covs=np.stack(covs),
    )


def six_uneven() -> GaussianMixture:
    """Six round components, weights from 0.05 to 0.35, unequal spacings and
    standard deviations from 0.1 to 0.5."""
    std = np.array([0.3, 0.1, 0.5, 0.2, 0.15, 0.25])
    return GaussianMixture(
        weights=np.array([0.35, 0.05, 0.25, 0.1, 0.2, 0.05]),
        means=np.array([[-4.0, 0.0], [-2.5, 2.0], [0.0, 0.0], [1.0, 3.5], [3.0, -2.0], [5.0, 1.0]]),
        covs=np.stack([s**2 * np.eye(2) for s in std]),
    )


def nine_unequal() -> GaussianMixture:
    """A 3 x 3 grid of spacing 3 and standard deviation 0.2 whose weights run
    from 0.3 down to 0.03 in a shuffled order (a tenfold spread)."""
    grid = np.array([-3.0, 0.0, 3.0])
    means = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    weights = np.array([0.3, 0.2, 0.12, 0.1, 0.08, 0.07, 0.06, 0.04, 0.03])
    order = np.random.RandomState(0).permutation(9)
    return GaussianMixture(weights[order], means, np.stack([0.04 * np.eye(2)] * 9))


def twenty_five_gaussians() -> GaussianMixture:
    """``skot.datasets.make_2d("25gaussians")``'s law: the grid
    ``{-6, -3, 0, 3, 6}^2``, covariance 0.005 I, equal weights."""
    grid = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
    means = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    return GaussianMixture(np.full(25, 1 / 25), means, np.stack([0.005 * np.eye(2)] * 25))


def four_against_three() -> tuple[GaussianMixture, GaussianMixture]:
    """A 2-D pair: P four round components on the corners of a square
    (standard deviation 0.6), Q three elongated or tight ones in its middle
    and beyond its top right (standard deviations 0.3 to 1.0, weights 0.5,
    0.3, 0.2). The log ratio runs from about -30 to +10 nats on their rows."""
    corners = np.array([[-1.5, -1.5], [-1.5, 1.5], [1.5, -1.5], [1.5, 1.5]])
    P = GaussianMixture(np.full(4, 0.25), corners, np.stack([0.36 * np.eye(2)] * 4))
    shapes = [(0.4, (1.0, 0.1)), (0.0, (0.2, 0.2)), (1.2, (0.6, 0.3))]
    covs = [_rotation(a) @ np.diag(v) @ _rotation(a).T for a, v in shapes]
    Q = GaussianMixture(
        np.array([0.5, 0.3, 0.2]),
        np.array([[0.0, 0.0], [2.5, 1.0], [-1.0, 2.5]]),
        np.stack(covs),
    )
    return P, Q


def two_against_three_5d() -> tuple[GaussianMixture, GaussianMixture]:
    """A 5-D pair: P two components (weights 0.6, 0.4), Q three (0.2, 0.3,
    0.5), with random full covariances of unequal scales (seeded) and means
    one or two units apart, so that the components overlap in part."""
    rng = np.random.RandomState(5)

    def covariance(scale):
        A = rng.normal(size=(5, 5))
        return scale * (A @ A.T / 5 + 0.2 * np.eye(5))

    P = GaussianMixture(
        np.array([0.6, 0.4]),
        np.array([[0.0, 0, 0, 0, 0], [2, 0, 0, 1, 0]]),
        np.stack([covariance(0.5), covariance(0.3)]),
    )
    Q = GaussianMixture(
        np.array([0.2, 0.3, 0.5]),
        np.array([[1.0, 1, 0, 0, 0], [-1, 0, 1, 0, 1], [1, -1, 0, 1, 0]]),
        np.stack([covariance(0.2), covariance(0.4), covariance(0.6)]),
    )
    return P, Q


def mode_shares(S, mixture) -> tuple[np.ndarray, float]:
    """The share of the rows of ``S`` that each component holds, over its
    weight, and the share of rows near no component.

    A row counts for the component nearest in that component's own largest
    standard deviation, when it lies within 3 of them.
    """
    scale = np.array([np.sqrt(np.linalg.eigvalsh(c).max()) for c in mixture.covs])
    distance = np.linalg.norm(S[:, None] - mixture.means[None], axis=2) / scale
    near = distance.min(1) < 3
    shares = np.bincount(distance.argmin(1)[near], minlength=len(scale)) / len(S)
    return shares / mixture.weights, float(1 - near.mean())


def modes_covered(S, mixture) -> tuple[int, int]:
    """Modes that hold at least half their weight's share of the rows of S."""
    ratio, _ = mode_shares(S, mixture)
    return int((ratio >= 0.5).sum()), len(ratio)


def worst_share_factor(ratio) -> float:
    """How far the worst mode's share is from its weight, as a factor >= 1
    (a missed mode gives infinity)."""
    ratio = np.asarray(ratio, dtype=float)
    low = ratio.min()
    return float(max(ratio.max(), np.inf if low == 0 else 1 / low))
