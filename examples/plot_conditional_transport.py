"""
Class-conditional transport
===========================

Two labelled classes trade places: class ``a`` moves from the left to the
right and class ``b`` the other way. An unconditional optimal transport map
keeps mass near where it is, so it sends each class onto the other's
target. :class:`skot.QFlowTransport` fitted with ``condition`` and
``target_condition`` carries each class to its own target with one network,
and :meth:`~skot.QFlowTransport.transform` takes the labels of the rows it
moves.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from skot import QFlowTransport

quick = os.environ.get("SKOT_DOCS_QUICK") == "1"
rng = np.random.default_rng(0)
n, shift = 500, np.array([2.0, 0.0])
X = np.vstack([0.5 * rng.normal(size=(n, 2)) - shift, 0.5 * rng.normal(size=(n, 2)) + shift])
Y = np.vstack([0.5 * rng.normal(size=(n, 2)) + shift, 0.5 * rng.normal(size=(n, 2)) - shift])
labels = np.repeat(["a", "b"], n)

settings = dict(init_max_iter=300 if quick else 2000, max_iter=10 if quick else 100, random_state=0)
conditional = QFlowTransport(**settings).fit(X, Y, condition=labels, target_condition=labels)
unconditional = QFlowTransport(**settings).fit(X, Y)

shown = rng.choice(2 * n, 80, replace=False)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (title, paths) in zip(
    axes,
    [
        ("unconditional", unconditional.trajectory(X[shown])),
        ("conditional", conditional.trajectory(X[shown], condition=labels[shown])),
    ],
):
    for cls, colour in (("a", "tab:blue"), ("b", "tab:orange")):
        ax.scatter(*X[labels == cls].T, s=2, alpha=0.2, color=colour)
        ax.scatter(*Y[labels == cls].T, s=2, alpha=0.2, color=colour, marker="x")
    for path, cls in zip(paths, labels[shown]):
        ax.plot(*path.T, lw=0.6, color="tab:blue" if cls == "a" else "tab:orange")
    ends = paths[:, -1]
    right = np.mean(ends[labels[shown] == "a", 0] > 0)
    ax.set_title(f"{title}: {right:.0%} of class a ends on the right")
    ax.set_aspect("equal")
plt.show()
