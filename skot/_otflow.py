"""OT-Flow: a continuous normalising flow driven by a potential, with an
exact O(d) trace and an HJB regulariser, as a density estimator."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    ClassNamePrefixFeaturesOutMixin,
    DensityMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from ._base import (
    SkotEstimator,
    check_finite,
    predict_in_batches,
    sample_rng,
    standardisation,
)
from ._cnf import LOG_2PI, end_state, velocity_field
from ._device import make_rngs, module_to, resolve_device, to_tensor
from ._ode import integrate, time_grid
from ._potential_training import OTFlowConfig, fit_potential
from ._validation import uniform_width
from ._weights import check_sample_weight

__all__ = ["OTFlowDensity", "otflow_config"]

# The parameters of OTFlowDensity that say how its potential is trained,
# which QFlowTransport(init="otflow") takes as init_params.
TRAINING_PARAMETERS = (
    "alpha_transport",
    "alpha_hjb",
    "hidden_layer_sizes",
    "n_steps",
    "n_steps_eval",
    "max_iter",
    "batch_size",
    "learning_rate_init",
    "tol",
    "n_iter_no_change",
    "early_stopping",
    "validation_fraction",
)


class OTFlowDensity(ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, SkotEstimator):
    r"""Density estimation by OT-Flow, a continuous normalising flow with an
    optimal-transport potential.

    The flow :math:`\dot z = -\nabla_x \Phi(z, t)` on :math:`t \in [0, 1]`
    carries the data distribution onto N(0, I). Its velocity is the gradient
    of a potential (a ResNet plus a low-rank quadratic), so the Laplacian
    that drives the log-determinant is computed exactly in closed form in
    :math:`O(m^2 d)` per row, with no autograd trace and no Hutchinson noise.
    Training minimises, over the rows :math:`x`,

    .. math::
        \mathbb{E}\big[C(x) + \alpha_L L(x) + \alpha_R R(x)\big],

    where :math:`C = \tfrac12\|z(1)\|^2 - \ell(1) + \tfrac d2\log 2\pi` is the
    negative log-likelihood, :math:`L = \int_0^1 \tfrac12\|\nabla\Phi\|^2 dt`
    the transport cost and :math:`R = \int_0^1 |\partial_t\Phi -
    \tfrac12\|\nabla\Phi\|^2| dt` the residual of the Hamilton-Jacobi-Bellman
    equation that an optimal potential satisfies. The state
    :math:`(z, \ell, L, R)` is integrated by RK4 with ``n_steps`` steps, and
    training differentiates through the solver (discretise-then-optimise).

    The data are standardised feature by feature before training; the
    log-densities returned account for it (they are in nats, in the units of
    X).

    Parameters
    ----------
    alpha_transport : float, default=0.01
        :math:`\alpha_L`, weight of the transport cost relative to the
        negative log-likelihood (the authors' 2-D setting, 1 against 100).
    alpha_hjb : float, default=0.05
        :math:`\alpha_R`, weight of the HJB residual relative to the negative
        log-likelihood.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        The layers of the potential's ResNet, which all have one width
        ``m``: an opening layer and ``len(hidden_layer_sizes) - 1`` residual
        layers (the authors' ``nTh``).
    n_steps : int, default=8
        RK4 steps on [0, 1] in training.
    n_steps_eval : int, default=16
        RK4 steps at evaluation (:meth:`score_samples`, :meth:`transform`,
        :meth:`inverse_transform`, :meth:`sample`).
    max_iter : int, default=1000
        Gradient steps (OT-Flow trains in one phase).
    batch_size : int, default=1024
        Minibatch of training, and rows per batch at evaluation.
    learning_rate_init : float, default=0.05
        Adam learning rate, decayed to zero along a cosine over ``max_iter``.
    tol : float, default=1e-4
        With ``early_stopping``: improvement of the held-out score, checked
        every 50 steps, below which a check counts as no improvement.
    n_iter_no_change : int, default=10
        With ``early_stopping``: checks without improvement after which
        training stops.
    early_stopping : bool, default=False
        Score the flow on a held-out ``validation_fraction`` of the rows
        before training and every 50 steps, stop when the score stalls, and
        keep the parameters that scored best (the authors' practice).
        Without it, training runs ``max_iter`` steps: the learning rate
        follows a cosine schedule over them, and a noisy minibatch loss is no
        reason to cut it short.
    validation_fraction : float, default=0.1
        Share of rows held out when ``early_stopping`` is on.
    warm_start : bool, default=False
        Continue from the previous fit's potential and data scaling.
    verbose : int, default=0
        Progress bar when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and minibatches.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...

    Attributes
    ----------
    potential_ : torch.nn.Module
        The fitted potential, on standardised coordinates.
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        Standardisation of the data.
    loss_curve_ : list of float
        Training loss, averaged over every 50 steps (and the last ones).
    validation_scores_ : list of float or None
        With ``early_stopping``: the held-out score (minus the training
        objective on the held-out rows, higher is better) of the starting
        potential and at every check.
    best_validation_score_ : float or None
        The best of ``validation_scores_``: that of the potential kept.
    history_ : dict of lists
        Per check: ``"nll"``, ``"transport"`` and ``"hjb"`` on the training
        batches (negative log-likelihood in standardised units).
    n_iter_ : int
        Gradient steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.

    See Also
    --------
    sklearn.neighbors.KernelDensity, sklearn.mixture.GaussianMixture
    QFlowTransport : optimal transport between two samples; ``init="otflow"``
        joins two OT-Flow fits.

    References
    ----------
    D. Onken, S. Wu Fung, X. Li and L. Ruthotto, "OT-Flow: Fast and accurate
    continuous normalizing flows via optimal transport", AAAI 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skot import OTFlowDensity
    >>> X = np.random.RandomState(0).normal(size=(500, 2))
    >>> density = OTFlowDensity(max_iter=50, n_steps=4, random_state=0).fit(X)
    >>> density.score_samples(X[:3]).shape
    (3,)
    >>> density.sample(4, random_state=0).shape
    (4, 2)
    """

    _networks = ("potential_",)

    _parameter_constraints: dict = {
        "alpha_transport": [Interval(Real, 0, None, closed="left")],
        "alpha_hjb": [Interval(Real, 0, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "n_steps_eval": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        alpha_transport=0.01,
        alpha_hjb=0.05,
        *,
        hidden_layer_sizes=(64, 64),
        n_steps=8,
        n_steps_eval=16,
        max_iter=1000,
        batch_size=1024,
        learning_rate_init=0.05,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        verbose=0,
        random_state=None,
        device="auto",
    ):
        self.alpha_transport = alpha_transport
        self.alpha_hjb = alpha_hjb
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_steps = n_steps
        self.n_steps_eval = n_steps_eval
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the flow from the rows of X to N(0, I).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for the scikit-learn API.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row counts: the flow fits the weighted empirical
            distribution. Each row's loss is multiplied by its weight, so a
            row of integer weight k counts as k copies of it in expectation
            (on strongly skewed weights this fitted better than drawing rows
            by weight: docs/training.md, "Sample weights"); rows of zero
            weight are dropped. None weighs rows equally.

        Returns
        -------
        self : OTFlowDensity
        """
        config = otflow_config(
            {key: getattr(self, key) for key in TRAINING_PARAMETERS},
            verbose=self.verbose,
            caller=type(self).__name__,
        )
        X, warm = self._validate_fit_data(X)
        X, weights = check_sample_weight(sample_weight, X)
        dev = resolve_device(self.device)
        rng, gen = make_rngs(self.random_state, dev)
        if warm:
            mean, scale = self.mean_, self.scale_
            potential = copy.deepcopy(module_to(self.potential_, dev))
        else:
            mean, scale = standardisation(X, weights)
            potential = None
        Xn = to_tensor((X - mean) / scale, dev)
        potential, record = fit_potential(Xn, config, rng, gen, potential, weights)

        # Fitted state is written only now: a failure above leaves the
        # estimator as it was.
        self.potential_ = potential.eval().requires_grad_(False)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.loss_curve_ = record.loss_curve
        self.validation_scores_ = record.validation_scores
        self.best_validation_score_ = record.best_validation_score
        self.history_ = {key: record.history.get(key, []) for key in ("nll", "transport", "hjb")}
        self.n_iter_ = record.n_iter
        self._n_features_out = X.shape[1]
        return self

    # ------------------------------------------------------------ evaluate

    def _ends(self, Xn: np.ndarray, dev, with_logdet=False, backward=False) -> np.ndarray:
        """End points of the flow from the rows of ``Xn``, in batches: at t=1
        (with the log-determinant as a last column when asked), or at t=0
        when ``backward``."""
        d = Xn.shape[1]
        grid = time_grid(1, device=dev)
        if backward:
            grid = grid.flip(0)
        if with_logdet:

            def ends(x):
                return end_state(self.potential_, x, self.n_steps_eval, costs=False)

        else:
            field = velocity_field(self.potential_, d)

            def ends(x):
                return integrate(field, x, grid, self.n_steps_eval)[-1]

        return predict_in_batches(ends, Xn, self.batch_size, dev, (d + with_logdet,))

    def score_samples(self, X):
        """Log-density of each row of X, in nats.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X, dev = self._validate_predict_data(X)
        d = X.shape[1]
        end = self._ends((X - self.mean_) / self.scale_, dev, with_logdet=True)
        z, logdet = end[:, :d], end[:, d]
        log_density = -0.5 * np.square(z).sum(1) - 0.5 * d * LOG_2PI + logdet
        log_density -= np.log(self.scale_).sum()
        return check_finite(log_density, "score_samples")

    def score(self, X, y=None):
        """Mean log-likelihood of the rows of X, in nats (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    def transform(self, X):
        """Latent codes: the flow's end points z(1) of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Approximately N(0, I) for rows drawn from the data distribution.
        """
        X, dev = self._validate_predict_data(X)
        Z = self._ends((X - self.mean_) / self.scale_, dev)
        return Z.astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Map latent codes back to data space (the flow run from t=1 to 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        Z, dev = self._validate_predict_data(X)
        return self._decode(Z, dev).astype(Z.dtype, copy=False)

    def _decode(self, Z, dev):
        return self._ends(Z, dev, backward=True) * self.scale_ + self.mean_

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the latent draws. None draws fresh entropy, without
            touching NumPy's global generator.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        dev = self._fitted_device()
        rng = sample_rng(n_samples, random_state)
        Z = rng.standard_normal((n_samples, self.n_features_in_))
        return self._decode(Z, dev)


def otflow_config(params: dict, *, verbose: int = 0, caller: str) -> OTFlowConfig:
    """The training settings of one potential from OTFlowDensity's parameters.

    ``params`` holds some of :data:`TRAINING_PARAMETERS` (the others take
    OTFlowDensity's defaults); they are validated as OTFlowDensity
    validates its own, with errors that name ``caller``.
    """
    unknown = sorted(set(params) - set(TRAINING_PARAMETERS))
    if unknown:
        raise TypeError(
            f"{caller} got {', '.join(map(repr, unknown))}, which OTFlowDensity's training "
            f"does not take; it takes {', '.join(TRAINING_PARAMETERS)}."
        )
    constraints = OTFlowDensity._parameter_constraints
    validate_parameter_constraints(
        {key: constraints[key] for key in params}, params, caller_name=caller
    )
    defaults = OTFlowDensity().get_params()
    settings = {key: params.get(key, defaults[key]) for key in TRAINING_PARAMETERS}
    width, depth = uniform_width(settings["hidden_layer_sizes"], "hidden_layer_sizes", caller)
    settings["hidden_layer_sizes"] = (width,) * depth
    return OTFlowConfig(**settings, verbose=verbose)
