"""Save, or compare with a saved file, every estimator's outputs for fixed
seeds on small problems: the check that a refactoring changed no numbers.

    python tools/output_snapshot.py save before.npz     # on the old code
    python tools/output_snapshot.py compare before.npz  # on the new code

``compare`` prints, per output, "identical" or the largest absolute
difference. Fitted records (``loss_curve_``, ``validation_scores_``...) are
compared too, so that a change of meaning shows up by name. Parameters are
written with today's names; ``_translate`` maps them to the names of the
code being measured, so the same script runs on both sides of a rename.
"""

from __future__ import annotations

import argparse
import inspect
import sys

import numpy as np

from skot import (
    OTFlowDensity,
    QFlowTransport,
    SJKOGenerator,
    TelescopingRatioEstimator,
    mutual_information,
)
from skot.datasets import make_correlated_gaussians, make_gaussian_ot

# Old spelling of each parameter renamed by the training-engine issue.
_OLD_NAMES = {
    "init_learning_rate_init": "init_learning_rate",
    "classifier_learning_rate_init": "classifier_learning_rate",
    "potential_learning_rate_init": "learning_rate_potential",
}


def _translate(cls, params):
    """``params`` in the spelling that ``cls`` takes."""
    known = inspect.signature(cls).parameters
    out = {}
    for key, value in params.items():
        if key == "init_params":
            out[key] = _translate(OTFlowDensity, value)
        elif key in known:
            out[key] = value
        elif key in _OLD_NAMES:
            out[_OLD_NAMES[key]] = value
        elif key == "hidden_layer_sizes" and cls is OTFlowDensity:
            out.update(width=value[0], n_layers=len(value))
        elif key == "hidden_layer_sizes" and cls is SJKOGenerator:
            out.update(map_width=value[0], n_blocks=len(value))
        elif key == "potential_hidden_layer_sizes":
            out.update(potential_width=value[0])
        else:
            raise TypeError(f"{cls.__name__} takes no {key!r}")
    return out


def make(cls, **params):
    return cls(**_translate(cls, params))


QFLOW = dict(
    init_max_iter=60,
    max_iter=3,
    n_flips=1,
    classifier_warmup=5,
    classifier_steps=1,
    hidden_layer_sizes=(32, 32),
    classifier_hidden_layer_sizes=(32, 32),
    batch_size=64,
    random_state=0,
)
OTFLOW = dict(
    max_iter=60,
    hidden_layer_sizes=(16, 16),
    n_steps=4,
    n_steps_eval=8,
    batch_size=256,
    random_state=0,
)
SJKO = dict(
    n_phases=2,
    max_iter=30,
    batch_size=64,
    hidden_layer_sizes=(16,),
    potential_hidden_layer_sizes=(16,),
    random_state=0,
)
RECORDS = (
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "init_loss_curve_",
    "init_validation_scores_",
    "init_n_iter_",
    "history_",
)


def _records(prefix, model, out):
    for name in RECORDS:
        value = getattr(model, name, None)
        if value is None:
            continue
        if isinstance(value, dict):
            for key, entries in value.items():
                # wall-clock seconds differ from run to run
                if key != "seconds" and entries and not isinstance(entries[0], str):
                    out[f"{prefix}.{name}[{key}]"] = np.asarray(entries, dtype=np.float64)
        else:
            out[f"{prefix}.{name}"] = np.asarray(value, dtype=np.float64)


def qflow_cases(out):
    X, Y, _ = make_gaussian_ot(300, 2, random_state=0)
    cases = {
        "qflow": {},
        "qflow_early_stopping": dict(early_stopping=True),
        "qflow_otflow_init": dict(
            init="otflow",
            init_params=dict(hidden_layer_sizes=(8, 8), n_steps=2, max_iter=20),
        ),
        "qflow_sigma": dict(sigma=0.1, ema_decay=0.0, gamma=0.1),
    }
    for name, extra in cases.items():
        model = make(QFlowTransport, **{**QFLOW, **extra}).fit(X, Y)
        out[f"{name}.transform"] = model.transform(X)
        out[f"{name}.inverse_transform"] = model.inverse_transform(Y)
        out[f"{name}.trajectory"] = model.trajectory(X[:20], times=np.linspace(0, 1, 7))
        out[f"{name}.transport_cost"] = model.transport_cost(X)
        out[f"{name}.score"] = np.array(model.score(X, Y))
        _records(name, model, out)
    model = make(QFlowTransport, **QFLOW).fit(X, Y)
    model.set_params(warm_start=True).fit(X, Y)
    out["qflow_warm_start.transform"] = model.transform(X)
    _records("qflow_warm_start", model, out)
    model = make(QFlowTransport, **QFLOW).fit(X)
    out["qflow_to_gaussian.transform"] = model.transform(X)
    out["qflow_to_gaussian.score"] = np.array(model.score(X))
    stacked = np.r_[X, Y]
    domain = np.r_[np.ones(len(X), int), -np.ones(len(Y), int)]
    labels = np.r_[np.zeros(len(X), int), -np.ones(len(Y), int)]
    model = make(QFlowTransport, **QFLOW).fit(stacked, labels, sample_domain=domain)
    out["qflow_domains.transform"] = model.transform(stacked, sample_domain=domain)
    out["qflow_domains.score"] = np.array(model.score(X, Y))


def otflow_cases(out):
    rng = np.random.RandomState(0)
    X = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.8], [0.8, 0.6]], 600)
    for name, extra in {"otflow": {}, "otflow_early_stopping": dict(early_stopping=True)}.items():
        model = make(OTFlowDensity, **{**OTFLOW, **extra}).fit(X)
        out[f"{name}.score_samples"] = model.score_samples(X)
        out[f"{name}.transform"] = model.transform(X)
        out[f"{name}.inverse_transform"] = model.inverse_transform(X[:50])
        out[f"{name}.sample"] = model.sample(50, random_state=0)
        _records(name, model, out)
    model = make(OTFlowDensity, **OTFLOW).fit(X)
    model.set_params(warm_start=True).fit(X)
    out["otflow_warm_start.score_samples"] = model.score_samples(X)


def ratio_cases(out):
    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(300, 2)), rng.normal(1.0, 1.0, size=(200, 2))
    common = dict(
        n_intervals=2, hidden_layer_sizes=(32, 32), max_iter=120, batch_size=64, random_state=0
    )
    transport = make(QFlowTransport, **QFLOW)
    cases = {
        "ratio_qflow": dict(transport=transport),
        "ratio_linear": dict(bridge="linear"),
        "ratio_none": dict(bridge="none"),
        "ratio_early_stopping": dict(bridge="linear", early_stopping=True),
    }
    for name, extra in cases.items():
        model = make(TelescopingRatioEstimator, **{**common, **extra}).fit(X, Y)
        out[f"{name}.score_samples"] = model.score_samples(X)
        out[f"{name}.score"] = np.array(model.score(X, Y))
        _records(name, model, out)
    XY, YX, _ = make_correlated_gaussians(600, 2, random_state=0)
    est = make(TelescopingRatioEstimator, bridge="none", max_iter=100, random_state=0)
    out["mutual_information"] = np.array(mutual_information(XY, YX, estimator=est, random_state=0))


def sjko_cases(out):
    X = np.random.RandomState(0).normal(size=(300, 2)) * [3.0, 0.5] + [1.0, -2.0]
    cases = {
        "sjko": {},
        "sjko_jsd": dict(divergence="jsd", alpha_r1=0.0),
        "sjko_deterministic": dict(n_noise_features=0),
    }
    for name, extra in cases.items():
        model = make(SJKOGenerator, **{**SJKO, **extra}).fit(X)
        out[f"{name}.sample"] = model.sample(100, random_state=0)
        out[f"{name}.transform"] = model.transform(np.random.RandomState(1).normal(size=(20, 2)))
        out[f"{name}.score"] = np.array(model.score(X))
        _records(name, model, out)
    model = make(SJKOGenerator, **SJKO).fit(X)
    model.set_params(warm_start=True).fit(X)
    out["sjko_warm_start.sample"] = model.sample(100, random_state=0)


def snapshot():
    out = {}
    for cases in (qflow_cases, otflow_cases, ratio_cases, sjko_cases):
        cases(out)
    return out


def compare(before, after):
    same = True
    for key in sorted(set(before) | set(after)):
        if key not in after or key not in before:
            print(f"{key:60s} only {'before' if key in before else 'after'}")
            continue
        a, b = before[key], after[key]
        if a.shape != b.shape:
            print(f"{key:60s} shape {a.shape} -> {b.shape}")
            same = False
        elif np.array_equal(a, b):
            print(f"{key:60s} identical")
        else:
            same = False
            print(f"{key:60s} max |diff| {np.abs(a - b).max():.3g}")
    return same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("path")
    args = parser.parse_args(argv)
    out = snapshot()
    if args.action == "save":
        np.savez(args.path, **out)
        print(f"{len(out)} outputs saved to {args.path}")
        return 0
    with np.load(args.path) as saved:
        before = dict(saved)
    return 0 if compare(before, out) else 1


if __name__ == "__main__":
    sys.exit(main())
