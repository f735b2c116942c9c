"""scikit-learn's estimator checks, on settings small enough to run fast."""

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skot import OTFlowDensity, QFlowTransport, SJKOGenerator, TelescopingRatioEstimator
from skot.da import FitOnSource

SMALL = dict(
    init_max_iter=20,
    max_iter=2,
    n_flips=1,
    classifier_warmup=2,
    classifier_steps=1,
    hidden_layer_sizes=(16,),
    classifier_hidden_layer_sizes=(16,),
    n_intervals=2,
    n_substeps=1,
    batch_size=32,
    random_state=0,
)

SMALL_OTFLOW = dict(
    max_iter=3, hidden_layer_sizes=(8, 8), n_steps=2, n_steps_eval=2, batch_size=32, random_state=0
)

SMALL_RATIO = dict(
    transport=QFlowTransport(**SMALL),
    n_intervals=2,
    hidden_layer_sizes=(8,),
    max_iter=3,
    batch_size=32,
    random_state=0,
)

SMALL_SJKO = dict(
    n_phases=2,
    max_iter=3,
    batch_size=32,
    hidden_layer_sizes=(8,),
    potential_hidden_layer_sizes=(8,),
    random_state=0,
)

EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "QFlowTransport": {},
    "OTFlowDensity": {},
    "TelescopingRatioEstimator": {},
    "FitOnSource": {
        "check_classifiers_classes": "Labels -1 mark target rows (skada's convention), so "
        "FitOnSource drops a class named -1: with labels {-1, 1} one class is left.",
    },
    "SJKOGenerator": {
        name: "SJKOGenerator.transform maps prior noise to data; it has no fit_transform, "
        "since transforming the training rows as if they were noise means nothing."
        for name in (
            "check_transformer_general",
            "check_transformer_data_not_an_array",
            "check_transformer_preserve_dtypes",
        )
    },
}


def _expected_failures(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [
        QFlowTransport(**SMALL),
        OTFlowDensity(**SMALL_OTFLOW),
        TelescopingRatioEstimator(**SMALL_RATIO),
        SJKOGenerator(**SMALL_SJKO),
        FitOnSource(LogisticRegression()),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
