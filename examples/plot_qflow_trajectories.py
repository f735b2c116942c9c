"""
Trajectories of an optimal transport flow
=========================================

:class:`skot.QFlowTransport` between two Gaussians in 2-D, whose optimal
map is known in closed form. The flow's paths are nearly straight lines,
and their end points land on the closed-form map's images.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from skot import QFlowTransport
from skot.datasets import make_gaussian_ot

quick = os.environ.get("SKOT_DOCS_QUICK") == "1"
X, Y, problem = make_gaussian_ot(1000, 2, random_state=0)
qflow = QFlowTransport(
    init_max_iter=300 if quick else 2000, max_iter=10 if quick else 100, random_state=0
).fit(X, Y)

paths = qflow.trajectory(X[:60])
exact = problem.transport(X[:60])
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(*X.T, s=3, alpha=0.3, label="P")
ax.scatter(*Y.T, s=3, alpha=0.3, label="Q")
for path in paths:
    ax.plot(*path.T, color="k", lw=0.6)
ax.scatter(*exact.T, s=12, marker="x", color="crimson", label="closed-form T*(x)")
ax.set_aspect("equal")
ax.legend(loc="upper left")
ax.set_title(f"mean |T(x) - T*(x)| = {np.linalg.norm(paths[:, -1] - exact, axis=1).mean():.3f}")
plt.show()
