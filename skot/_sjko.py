"""S-JKO: a generative model trained as K steps of a Wasserstein gradient
flow, each a semi-dual unbalanced OT problem, at a cost linear in K."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OneToOneFeatureMixin, _fit_context
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _SetOutputMixin
from sklearn.utils.validation import check_is_fitted

from ._base import (
    SkotEstimator,
    check_finite,
    predict_in_batches,
    sample_rng,
    standardisation,
)
from ._criteria import energy_distance, gaussian_mmd
from ._device import build_module, make_rngs, module_to, resolve_device, to_tensor
from ._jko import JKOConfig, run_jko_phases
from ._nets import NoisyMap, ResidualMLP
from ._semidual import DIVERGENCES
from ._validation import uniform_width
from ._weights import check_sample_weight, split_weighted_rows

__all__ = ["SJKOGenerator"]

_SCORE_ROWS = 2000  # rows on each side of the energy distance in score
# The held-out criterion of early_stopping: a Gaussian MMD whose bandwidth,
# in standardised units, is 0.2 in two dimensions and grows like the typical
# distance between points, sqrt(d). It sees mass move between modes, which
# the energy distance's growing kernel barely does (docs/sjko.md).
_MMD_BANDWIDTH_2D = 0.2


# _SetOutputMixin gives set_output(transform="pandas") without
# TransformerMixin's fit_transform, which this estimator must not have (see
# its tags); scikit-learn has no public spelling of that mixin.
class SJKOGenerator(OneToOneFeatureMixin, _SetOutputMixin, SkotEstimator):
    r"""Generative model by a scalable JKO scheme (S-JKO).

    Learns a map :math:`T` from a prior :math:`\mu_0 = N(0, I)` (with an
    auxiliary noise :math:`z`) to the data distribution :math:`\nu` as
    ``n_phases`` steps of the JKO scheme of the Wasserstein gradient flow of
    :math:`D_f(\cdot \| \nu)`:

    .. math::
        \mu_{k+1} = \arg\min_\rho \; D_f(\rho \| \nu)
        + \frac{1}{2 d h} W_2^2(\mu_k, \rho).

    Each step is a source-fixed unbalanced OT problem, solved in its
    semi-dual form by a potential :math:`v` and the map, trained
    adversarially (:mod:`skot._semidual`): :math:`v` minimises
    :math:`\mathbb{E}_\nu f^*(-v(y)) + \mathbb{E}\, v(T(x, z))` with an R1
    penalty on data rows, and :math:`T` minimises
    :math:`\mathbb{E}\big[\|T(x, z) - T_{k}(x, z')\|^2 / (2dh) - v(T(x, z))\big]`.

    The reparameterisation that makes this scalable: the one map network
    sends the prior straight to :math:`\mu_{k+1}`, and the cost is measured
    against a frozen copy :math:`T_k` of itself from the end of the previous
    phase (the identity in the first phase), which already sends the prior to
    :math:`\mu_k`. A phase therefore costs the same whatever its index, so
    training is :math:`O(K)` in the number of phases rather than
    :math:`O(K^2)` for chaining K maps, and sampling is one network
    evaluation.

    Data are standardised feature by feature before training; the prior,
    ``step_size`` and ``instance_noise`` live in those units, and samples are
    returned in the units of X. :meth:`transform` takes prior rows in the
    data's columns and returns data rows, so ``set_output(transform="pandas")``
    names its output columns as the training data's.

    Parameters
    ----------
    n_phases : int, default=10
        Number of JKO steps K.
    step_size : float, default=1.0
        JKO step h. The cost is averaged over features (the authors'
        convention), so h does not need rescaling with the dimension.
    divergence : {"kl", "jsd"}, default="kl"
        The f-divergence whose gradient flow is followed: Kullback-Leibler,
        or Jensen-Shannon in the authors' softplus form, which tolerates
        larger steps.
    max_iter : int, default=1000
        Gradient steps of each player in every phase (each JKO step).
    batch_size : int, default=400
        Rows of data and of prior draws per step.
    learning_rate_init : float, default=1e-3
        Adam learning rate of the map.
    potential_learning_rate_init : float, default=2e-4
        Adam learning rate of the potential.
    alpha_r1 : float, default=0.2
        Weight of the R1 penalty :math:`\tfrac12\mathbb{E}_\nu\|\nabla v\|^2`
        on the potential; 0 switches it off.
    instance_noise : float, default=1/32
        Standard deviation of Gaussian noise added to the standardised data
        rows the potential sees in phase k, divided by k + 1 (the authors'
        annealing): it smooths the first phases and fades.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, score the map before
        the first phase and after every phase by the Gaussian MMD between
        its samples and those rows (bandwidth :math:`0.2\sqrt{d/2}` in
        standardised units), and keep the map and potential of the
        best-scoring phase. Every phase still runs. On by default because
        S-JKO can drift away from the data after it has matched it
        (docs/sjko.md, "Averaging the map, and where S-JKO goes wrong");
        False trains on every row and keeps the last phase.
    validation_fraction : float, default=0.1
        Share of rows held out when ``early_stopping`` is on (at most 2,000
        of them are scored).
    ema_decay : float, default=0.99
        Decay of an exponential moving average of the map's parameters over
        the steps of each phase; each phase then ends at that average (a
        plain mean of its first ``1 / (1 - ema_decay)`` steps), which is
        the next phase's frozen map and starting point, and the fitted map.
        The adversarial steps leave the map oscillating around each JKO
        step's solution, and the average cancels much of it (docs/sjko.md,
        "Averaging the map, and where S-JKO goes wrong"). 0 keeps the last
        step's map.
    n_noise_features : int or None, default=None
        Dimension of the auxiliary noise z fed to the map; None uses the
        number of features, 0 makes the map deterministic.
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        The residual blocks of the map network, which all have one width:
        a linear lift to that width, one block (two layers) per entry, and a
        head of one hidden layer.
    potential_hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        The residual blocks of the potential network, likewise.
    warm_start : bool, default=False
        Run ``n_phases`` further JKO steps from the previous fit's map,
        potential and scaling.
    verbose : int, default=0
        Progress bar when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatches and noise draws.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...

    Attributes
    ----------
    map_ : torch.nn.Module
        The fitted map :math:`T_k(x, z)`, on standardised coordinates: that
        of the phase kept (see ``potential_``).
    potential_ : torch.nn.Module
        The potential of the phase kept: the best-scoring one with
        ``early_stopping``, the last otherwise.
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        Standardisation of the data.
    n_noise_features_ : int
        Dimension of the auxiliary noise.
    loss_curve_ : list of float
        Map loss averaged over every 50 steps (and the last steps of each
        phase), all phases in order.
    history_ : dict of lists
        One entry per phase: ``"potential_loss"``, ``"map_loss"`` and
        ``"transport_cost"`` averaged over the phase's steps, ``"seconds"``
        and ``"map_evaluations"`` (rows pushed through a map network, the
        frozen one included: the same in every phase).
    validation_scores_ : list of float or None
        With ``early_stopping``: minus the held-out MMD of the map before
        the first phase and after each; None otherwise.
    best_validation_score_ : float or None
        The best of ``validation_scores_``: that of the map kept.
    n_phases_ : int
        JKO steps taken in all fits (they add up under ``warm_start``).
    n_iter_ : int
        Gradient steps of the map in this fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.

    See Also
    --------
    OTFlowDensity : a normalising flow, with log-densities and sampling.
    sklearn.mixture.GaussianMixture

    References
    ----------
    J. Choi, J. Choi and M. Kang, "Scalable Wasserstein gradient flow for
    generative modeling through unbalanced optimal transport", ICML 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skot import SJKOGenerator
    >>> X = np.random.RandomState(0).normal(size=(500, 2))
    >>> gen = SJKOGenerator(n_phases=2, max_iter=20, random_state=0).fit(X)
    >>> gen.sample(4, random_state=0).shape
    (4, 2)
    >>> len(gen.history_["map_loss"])
    2
    """

    _networks = ("map_", "potential_")

    _parameter_constraints: dict = {
        "n_phases": [Interval(Integral, 1, None, closed="left")],
        "step_size": [Interval(Real, 0, None, closed="neither")],
        "divergence": [StrOptions(set(DIVERGENCES))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "potential_learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha_r1": [Interval(Real, 0, None, closed="left")],
        "instance_noise": [Interval(Real, 0, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_noise_features": [Interval(Integral, 0, None, closed="left"), None],
        "hidden_layer_sizes": [tuple, list],
        "potential_hidden_layer_sizes": [tuple, list],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        n_phases=10,
        step_size=1.0,
        divergence="kl",
        *,
        max_iter=1000,
        batch_size=400,
        learning_rate_init=1e-3,
        potential_learning_rate_init=2e-4,
        alpha_r1=0.2,
        instance_noise=1 / 32,
        ema_decay=0.99,
        early_stopping=True,
        validation_fraction=0.1,
        n_noise_features=None,
        hidden_layer_sizes=(128, 128, 128),
        potential_hidden_layer_sizes=(128, 128, 128),
        warm_start=False,
        verbose=0,
        random_state=None,
        device="auto",
    ):
        self.n_phases = n_phases
        self.step_size = step_size
        self.divergence = divergence
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.potential_learning_rate_init = potential_learning_rate_init
        self.alpha_r1 = alpha_r1
        self.instance_noise = instance_noise
        self.ema_decay = ema_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_noise_features = n_noise_features
        self.hidden_layer_sizes = hidden_layer_sizes
        self.potential_hidden_layer_sizes = potential_hidden_layer_sizes
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the map from the prior to the distribution of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for the scikit-learn API.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row counts: the model fits the weighted empirical
            distribution. The potential's minibatches draw rows in
            proportion to their weights, so a row of integer weight k counts
            as k copies of it; rows of zero weight are dropped. None weighs
            rows equally.

        Returns
        -------
        self : SJKOGenerator
        """
        name = type(self).__name__
        map_width, map_blocks = uniform_width(self.hidden_layer_sizes, "hidden_layer_sizes", name)
        potential_width, potential_blocks = uniform_width(
            self.potential_hidden_layer_sizes, "potential_hidden_layer_sizes", name
        )
        X, warm = self._validate_fit_data(X)
        X, weights = check_sample_weight(sample_weight, X)
        d = X.shape[1]
        n_noise = d if self.n_noise_features is None else self.n_noise_features
        if warm and n_noise != self.n_noise_features_:
            raise ValueError(
                f"warm_start needs the same auxiliary noise as the previous fit: "
                f"n_noise_features resolves to {n_noise}, the fitted map takes "
                f"{self.n_noise_features_}."
            )
        dev = resolve_device(self.device)
        rng, gen = make_rngs(self.random_state, dev)
        if warm:
            mean, scale = self.mean_, self.scale_
            map_ = copy.deepcopy(module_to(self.map_, dev))
            potential = copy.deepcopy(module_to(self.potential_, dev))
            previous, first_phase = copy.deepcopy(map_), self.n_phases_
        else:
            mean, scale = standardisation(X, weights)
            map_ = build_module(lambda: NoisyMap(d, n_noise, map_width, map_blocks), dev, gen)
            potential = build_module(
                lambda: ResidualMLP(d, 1, potential_width, potential_blocks), dev, gen
            )
            previous, first_phase = None, 0
        Xn = (X - mean) / scale
        validate = None
        if self.early_stopping:
            X_val, Xn, weights = split_weighted_rows(Xn, weights, self.validation_fraction, rng)
            validate = _held_out_mmd(map_, X_val[:_SCORE_ROWS], n_noise, rng, dev)
        data = to_tensor(Xn, dev)
        config = JKOConfig(
            n_phases=self.n_phases,
            step_size=self.step_size,
            divergence=self.divergence,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init,
            potential_learning_rate_init=self.potential_learning_rate_init,
            alpha_r1=self.alpha_r1,
            instance_noise=self.instance_noise,
            ema_decay=self.ema_decay,
            verbose=self.verbose,
        )
        record = run_jko_phases(
            map_,
            potential,
            data,
            config,
            gen,
            previous,
            first_phase,
            weights=weights,
            validate=validate,
        )

        # Fitted state is written only now: a failure above leaves the
        # estimator as it was.
        self.map_ = map_.eval().requires_grad_(False)
        self.potential_ = potential.eval().requires_grad_(False)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.n_noise_features_ = n_noise
        self.loss_curve_ = record.loss_curve
        self.history_ = {
            "potential_loss": [phase["potential_loss"] for phase in record.phases],
            "map_loss": [phase["loss"] for phase in record.phases],
            "transport_cost": [phase["transport_cost"] for phase in record.phases],
            "seconds": [phase["seconds"] for phase in record.phases],
            "map_evaluations": [phase["map_evaluations"] for phase in record.phases],
        }
        self.validation_scores_ = record.validation_scores
        self.best_validation_score_ = record.best_validation_score
        self.n_phases_ = first_phase + self.n_phases
        self.n_iter_ = record.n_iter
        return self

    # ------------------------------------------------------------ generate

    def _generate(self, Z: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """Map standardised prior rows ``Z`` with auxiliary noise ``aux`` to
        data units, in batches."""
        dev = self._fitted_device()
        d = Z.shape[1]

        def generate(rows):
            return self.map_(rows[:, :d].contiguous(), rows[:, d:].contiguous())

        out = predict_in_batches(generate, np.hstack([Z, aux]), self.batch_size, dev, (d,))
        return check_finite(out * self.scale_ + self.mean_, "The fitted map")

    def sample(self, n_samples=1, random_state=None):
        """Draw samples: prior noise pushed through the fitted map.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the prior and auxiliary draws. None draws fresh entropy,
            without touching NumPy's global generator.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        rng = sample_rng(n_samples, random_state)
        Z = rng.standard_normal((n_samples, self.n_features_in_))
        aux = rng.standard_normal((n_samples, self.n_noise_features_))
        return self._generate(Z, aux)

    def transform(self, Z):
        """Map prior noise to data.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_features)
            Rows of the prior N(0, I), in standardised units (one row per
            sample to generate).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            ``T(Z, 0)`` in the units of the training data: the map at zero
            auxiliary noise, so that each output row depends on its input
            row alone. :meth:`sample` draws the auxiliary noise as well.
        """
        Z, _ = self._validate_predict_data(Z)
        aux = np.zeros((len(Z), self.n_noise_features_))
        return self._generate(Z, aux).astype(Z.dtype, copy=False)

    def score(self, X, y=None):
        """Minus the energy distance between X and as many generated rows.

        Higher is better; zero only when the model's distribution equals the
        data's. At most 2,000 rows of X are used (the first ones), against
        as many samples drawn with a fixed seed, so the score is
        deterministic and comparable across fits, for instance across the
        ``step_size`` of a grid search.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out data.
        y : None
            Ignored.

        Returns
        -------
        float
        """
        X, _ = self._validate_predict_data(X)
        X = X[:_SCORE_ROWS]
        return -energy_distance(X, self.sample(len(X), random_state=0))

    # ------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform maps noise to data. There is deliberately no
        # fit_transform: transforming the training rows as if they were
        # noise would mean nothing.
        tags.transformer_tags = TransformerTags()
        return tags


def _held_out_mmd(map_, X_val: np.ndarray, n_noise: int, rng, dev):
    """The held-out score of early stopping: a function returning minus the
    Gaussian MMD between held-out standardised rows and as many rows of the
    map, from prior draws fixed here so that phases are compared on the same
    draws."""
    d = X_val.shape[1]
    prior = to_tensor(rng.standard_normal((len(X_val), d)), dev)
    aux = to_tensor(rng.standard_normal((len(X_val), n_noise)), dev)
    bandwidth = _MMD_BANDWIDTH_2D * np.sqrt(d / 2)

    def validate():
        with torch.no_grad():
            mapped = map_(prior, aux).cpu().numpy()
        return -gaussian_mmd(X_val, mapped, bandwidth)

    return validate
