"""Importance-weight safeguards: the weights of one fitted TelescopingRatioEstimator
per problem, raw, flattened, truncated and with the uncovered share spread,
and what an estimator trained on each learns on the target.

Problems (covariate shift: the labels' law given X is the same in both
domains, so weighting by q/p is what corrects it where the source has rows):

- ``shimodaira s``: a line fitted to the cubic ``-x + x^3`` with the source
  around 1 and the target around 2 (Shimodaira 2000), seeds 0-4 (600 source
  and 400 target rows, ``bridge="none"``); target risk (MSE, lower is better);
- ``5-D regression s``: a linear fit of ``sin(2 x1) + x2^2 + x3 / 2`` with the
  source N(0, I) and the target a narrower Gaussian moved by (1, 0.8, 0, 0,
  0), seeds 0-1 (1,000 and 600 rows, ``bridge="linear"``); target risk;
- ``partial support s``: a line fitted to ``sin(2 x) + 0.3 x^2``, the source
  N(0, 1), the target 0.6 N(1, 0.4^2) + 0.4 N(4.5, 0.4^2), whose second
  component lies where the source has (almost) no rows, seeds 0-2 (800 and
  500 rows, ``bridge="none"``); target risk;
- ``covariate_shift s`` (skada's, SVC; seeds 0-2, 0 being bench_da's) and
  ``digits`` (bench_da's scanner shift, logistic regression on 16 principal
  components), with the default Q-flow bridge; target accuracy (higher is
  better).

Weights (all rescaled to mean 1 on the source rows): ``raw`` q/p as
estimated; ``flatten 0.5`` (q/p)^0.5; ``sqrt-n``: no weight above sqrt(n)
times the mean; ``sqrt-n, spread``, the default of ``predict_weights``:
the truncated weights carry the share c of the target that the source
covers (the mean of q/p over the source rows, ``covered_share``, in the
``covered`` column) and every row gets an equal part of the rest, 1 - c.
``ESS / n`` is Kish's effective sample size over the source rows.

Usage::

    python benchmarks/bench_weight_safeguards.py

Needs skada (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import numpy as np
from _report import command, machine, markdown_table, write
from bench_da import shifted_digits, skada_shifted
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skot import TelescopingRatioEstimator

VARIANTS = {
    "raw": dict(max_weight=None, uncovered=None),
    "flatten 0.5": dict(max_weight=None, power=0.5, uncovered=None),
    "sqrt-n": dict(uncovered=None),
    "sqrt-n, spread (default)": {},
}


def shimodaira(seed):
    rng = np.random.RandomState(seed)
    xs, xt = rng.normal(1.0, 0.5, 600), rng.normal(2.0, 0.3, 400)

    def f(x):
        return -x + x**3

    ys = f(xs) + rng.normal(0, 0.3, 600)
    x_test = rng.normal(2.0, 0.3, 2000)[:, None]

    def risk(model):
        return np.mean((model.predict(x_test) - f(x_test[:, 0])) ** 2)

    ratio = TelescopingRatioEstimator(bridge="none", max_iter=500, random_state=0)
    return xs[:, None], ys, xt[:, None], LinearRegression(), risk, ratio


def regression_5d(seed):
    rng = np.random.default_rng(seed)
    shift = np.r_[1.0, 0.8, 0.0, 0.0, 0.0]

    def f(X):
        return np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2]

    Xs = rng.normal(size=(1000, 5))
    Xt = rng.normal(size=(600, 5)) * 0.6 + shift
    ys = f(Xs) + rng.normal(0, 0.2, 1000)
    X_test = rng.normal(size=(3000, 5)) * 0.6 + shift

    def risk(model):
        return np.mean((model.predict(X_test) - f(X_test)) ** 2)

    ratio = TelescopingRatioEstimator(bridge="linear", n_intervals=4, max_iter=1000, random_state=0)
    return Xs, ys, Xt, LinearRegression(), risk, ratio


def partial_support(seed):
    rng = np.random.RandomState(seed)

    def f(x):
        return np.sin(2 * x) + 0.3 * x**2

    def target(n):
        near = rng.rand(n) < 0.6
        return np.where(near, rng.normal(1.0, 0.4, n), rng.normal(4.5, 0.4, n))

    xs, xt = rng.normal(0.0, 1.0, 800), target(500)
    ys = f(xs) + rng.normal(0, 0.2, 800)
    x_test = target(3000)

    def risk(model):
        return np.mean((model.predict(x_test[:, None]) - f(x_test)) ** 2)

    ratio = TelescopingRatioEstimator(bridge="none", random_state=0)
    return xs[:, None], ys, xt[:, None], LinearRegression(), risk, ratio


def classification(name, seed=0):
    if name == "digits":
        X, y, domain = shifted_digits()
        X = make_pipeline(StandardScaler(), PCA(16, random_state=0)).fit_transform(X)
        classifier = LogisticRegression(max_iter=2000)
    else:
        X, y, domain = skada_shifted(name, random_state=seed)
        classifier = SVC()
    source = domain >= 0
    Xt, yt = X[~source], y[~source]

    def accuracy(model):
        return np.mean(model.predict(Xt) == yt)

    return X[source], y[source], Xt, classifier, accuracy, TelescopingRatioEstimator(random_state=0)


def main():
    problems = {f"shimodaira {s}": (shimodaira, (s,)) for s in range(5)}
    problems.update({f"5-D regression {s}": (regression_5d, (s,)) for s in range(2)})
    problems.update({f"partial support {s}": (partial_support, (s,)) for s in range(3)})
    problems.update(
        {f"covariate_shift {s}": (classification, ("covariate_shift", s)) for s in range(3)}
    )
    problems["digits"] = (classification, ("digits",))
    header = ["problem", "covered", "weights", "ESS / n", "target risk (MSE) or accuracy"]
    print(" | ".join(header), flush=True)
    rows = []
    for name, (make, args) in problems.items():
        Xs, ys, Xt, estimator, score, ratio = make(*args)
        ratio.fit(Xs, Xt)
        covered = f"{ratio.covered_share(Xs):.3f}"
        unweighted = f"{score(clone(estimator).fit(Xs, ys)):.3f}"
        rows.append([name, covered, "unweighted", "1.000", unweighted])
        for label, safeguards in VARIANTS.items():
            w = ratio.predict_weights(Xs, normalize=True, **safeguards)
            ess = ratio.effective_sample_size(Xs, **safeguards) / len(Xs)
            fitted = clone(estimator).fit(Xs, ys, sample_weight=w)
            rows.append([name, covered, label, f"{ess:.3f}", f"{score(fitted):.3f}"])
        for row in rows[-len(VARIANTS) - 1 :]:
            print(" | ".join(row), flush=True)
    text = "\n\n".join(
        [
            "# Importance-weight safeguards",
            f"`{command('bench_weight_safeguards.py')}`",
            f"Machine: {machine()}.",
            markdown_table(header, rows),
        ]
    )
    write("weight_safeguards.md", text)


if __name__ == "__main__":
    main()
