"""
Samples of a JKO-scheme generator
=================================

:class:`skot.SJKOGenerator` learns a map from noise to the 25 Gaussians
toy distribution as K steps of a Wasserstein gradient flow. Its samples
are shown beside the data; ``history_`` keeps each phase's losses. By
default 10% of the rows are held out and the phase whose map is closest
to them is kept (``validation_scores_``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from skot import SJKOGenerator
from skot.datasets import make_2d

quick = os.environ.get("SKOT_DOCS_QUICK") == "1"
X = make_2d("25gaussians", 10000, random_state=0)
generator = SJKOGenerator(
    n_phases=3 if quick else 10, max_iter=200 if quick else 1000, random_state=0
).fit(X)
S = generator.sample(5000, random_state=1)
# validation_scores_ starts with the map before the first phase.
kept = int(np.argmax(generator.validation_scores_))

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
axes[0].scatter(*X[:5000].T, s=1)
axes[0].set_title("data")
axes[1].scatter(*S.T, s=1, color="C1")
axes[1].set_title(f"S-JKO, phase {kept} of {generator.n_phases_} kept")
for ax in axes[:2]:
    ax.set_aspect("equal")
    ax.set_xlim(-8, 8)
    ax.set_ylim(-8, 8)
axes[2].plot(generator.history_["transport_cost"], marker="o")
axes[2].set_xlabel("phase")
axes[2].set_title("transport cost of each JKO step")
plt.tight_layout()
plt.show()
