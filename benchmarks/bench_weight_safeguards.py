"""Importance-weight safeguards: the weights of one fitted TelescopingRatioEstimator
per problem, raw, flattened and truncated, and what an estimator trained on
each learns on the target.

Problems (covariate shift: the labels' law given X is the same in both
domains, so weighting by q/p is what corrects it):

- ``shimodaira s``: a line fitted to the cubic ``-x + x^3`` with the source
  around 1 and the target around 2 (Shimodaira 2000), seeds 0-4 (600 source
  and 400 target rows, ``bridge="none"``); target risk (MSE, lower is better);
- ``5-D regression s``: a linear fit of ``sin(2 x1) + x2^2 + x3 / 2`` with the
  source N(0, I) and the target a narrower Gaussian moved by (1, 0.8, 0, 0,
  0), seeds 0-1 (1,000 and 600 rows, ``bridge="linear"``); target risk;
- ``covariate_shift`` (skada's, SVC) and ``digits`` (bench_da's scanner
  shift, logistic regression on 16 principal components), with the default
  Q-flow bridge; target accuracy (higher is better).

Weights (all rescaled to mean 1 on the source rows): ``raw`` q/p as
estimated; ``flatten 0.5`` (q/p)^0.5; ``sqrt-n``, the default of
``predict_weights``: no weight above sqrt(n) times the mean. ``ESS / n``
is Kish's effective sample size over the source rows.

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
    "raw": dict(max_weight=None),
    "flatten 0.5": dict(max_weight=None, power=0.5),
    "sqrt-n (default)": {},
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


def classification(name):
    if name == "digits":
        X, y, domain = shifted_digits()
        X = make_pipeline(StandardScaler(), PCA(16, random_state=0)).fit_transform(X)
        classifier = LogisticRegression(max_iter=2000)
    else:
        X, y, domain = skada_shifted(name)
        classifier = SVC()
    source = domain >= 0
    Xt, yt = X[~source], y[~source]

    def accuracy(model):
        return np.mean(model.predict(Xt) == yt)

    return X[source], y[source], Xt, classifier, accuracy, TelescopingRatioEstimator(random_state=0)


def main():
    problems = {f"shimodaira {s}": (shimodaira, s) for s in range(5)}
    problems.update({f"5-D regression {s}": (regression_5d, s) for s in range(2)})
    problems.update({name: (classification, name) for name in ("covariate_shift", "digits")})
    header = ["problem", "weights", "ESS / n", "target risk (MSE) or accuracy"]
    print(" | ".join(header), flush=True)
    rows = []
    for name, (make, arg) in problems.items():
        Xs, ys, Xt, estimator, score, ratio = make(arg)
        ratio.fit(Xs, Xt)
        rows.append([name, "unweighted", "1.000", f"{score(clone(estimator).fit(Xs, ys)):.3f}"])
        for label, safeguards in VARIANTS.items():
            w = ratio.predict_weights(Xs, normalize=True, **safeguards)
            ess = ratio.effective_sample_size(Xs, **safeguards) / len(Xs)
            fitted = clone(estimator).fit(Xs, ys, sample_weight=w)
            rows.append([name, label, f"{ess:.3f}", f"{score(fitted):.3f}"])
        for row in rows[-4:]:
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
