"""
A decision boundary before and after adaptation
===============================================

A classifier trained on a source domain fails on a target domain where the
classes have moved. :func:`skot.da.make_da_pipeline` with
:class:`skot.QFlowTransport` carries the labelled source rows onto the
target domain, and the classifier trained there separates the target rows.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from skot import QFlowTransport
from skot.da import make_da_pipeline

quick = os.environ.get("SKOT_DOCS_QUICK") == "1"
rng = np.random.RandomState(0)


def domain(n):
    labels = rng.randint(2, size=n)
    return rng.normal(0, 0.6, (n, 2)) + np.c_[3.0 * labels - 1.5, np.zeros(n)], labels


Xs, ys = domain(300)
Xt, yt = domain(300)
Xt = Xt @ np.array([[0.8, 0.6], [-0.6, 0.8]]) * [1.5, 1.0] + [4.0, 3.0]
X = np.r_[Xs, Xt]
y = np.r_[ys, -np.ones(300, dtype=int)]
sample_domain = np.r_[np.ones(300, dtype=int), -np.ones(300, dtype=int)]

plain = LogisticRegression().fit(Xs, ys)
flow = QFlowTransport(
    init_max_iter=300 if quick else 2000, max_iter=10 if quick else 100, random_state=0
)
adapted = make_da_pipeline(flow, LogisticRegression())
adapted.fit(X, y, qflowtransport__sample_domain=sample_domain)

grid = np.stack(np.meshgrid(np.linspace(-4, 9, 200), np.linspace(-3, 8, 200)), -1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
for ax, model, title in [(axes[0], plain, "no adaptation"), (axes[1], adapted, "QFlowTransport")]:
    region = model.predict(grid.reshape(-1, 2)).reshape(200, 200)
    ax.contourf(grid[..., 0], grid[..., 1], region, alpha=0.2, cmap="coolwarm")
    ax.scatter(*Xs.T, c=ys, cmap="coolwarm", s=6, marker="o", alpha=0.4)
    ax.scatter(*Xt.T, c=yt, cmap="coolwarm", s=10, marker="^")
    accuracy = (model.predict(Xt) == yt).mean()
    ax.set_title(f"{title}: target accuracy {accuracy:.2f}")
    ax.set_aspect("equal")
plt.show()
