"""
A log density ratio along a transport flow
==========================================

:class:`skot.TelescopingRatioEstimator` estimates log q(x)/p(x) between two
Gaussians as a sum of log ratios between the intermediate distributions of
a Q-flow. The exact log ratio is known; the two maps are drawn side by side.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import multivariate_normal

from skot import BRIDGE_SCHEDULE, QFlowTransport, TelescopingRatioEstimator

quick = os.environ.get("SKOT_DOCS_QUICK") == "1"
rng = np.random.RandomState(0)
p = multivariate_normal([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
q = multivariate_normal([2.0, 1.0], [[0.5, 0.2], [0.2, 0.8]])
X, Y = p.rvs(4000, random_state=rng), q.rvs(4000, random_state=rng)

# The bridge's schedule (skot.BRIDGE_SCHEDULE), not QFlowTransport's map defaults.
schedule = dict(BRIDGE_SCHEDULE, init_max_iter=300 if quick else 2000)
flow = QFlowTransport(**schedule, max_iter=10 if quick else 100, random_state=0)
ratio = TelescopingRatioEstimator(flow, max_iter=300 if quick else 2000, random_state=0)
ratio.fit(X, Y)

grid = np.stack(np.meshgrid(np.linspace(-2, 4, 80), np.linspace(-2.5, 3.5, 80)), -1)
points = grid.reshape(-1, 2)
exact = q.logpdf(points) - p.logpdf(points)
estimate = ratio.score_samples(points)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
levels = np.linspace(-8, 8, 17)
for ax, values, title in [(axes[0], exact, "exact"), (axes[1], estimate, "telescoped")]:
    contour = ax.contourf(grid[..., 0], grid[..., 1], values.reshape(80, 80).clip(-8, 8), levels)
    ax.set_title(f"log q(x)/p(x), {title}")
fig.colorbar(contour, ax=axes)
plt.show()
