"""Q-flow-ratio: log density ratios telescoped along a transport flow."""

from __future__ import annotations

import copy
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import SkotEstimator, check_finite, predict_in_batches, standardisation
from ._bridges import DirectBridge, FlowBridge, LinearBridge
from ._conditions import with_one_hot
from ._device import batches, build_module, module_to, to_tensor
from ._engine import train_network
from ._gaussian_baseline import GaussianBaselineRatio, fit_interval_quadratics, weighted_gaussian
from ._nets import ACTIVATIONS, TimeMLP, full_rank_width
from ._ode import time_grid
from ._qflow import QFlowTransport
from ._ratio import integrated_log_ratio, telescoping_loss
from ._validation import score_target_sample
from ._weights import (
    kish_effective_size,
    sample_weight_array,
    split_weighted_rows,
    stacked_weights,
)

__all__ = ["BRIDGE_SCHEDULE", "TelescopingRatioEstimator", "safeguarded_log_weights"]

#: The Q-flow schedule of the default bridge: the map's former defaults, a
#: slower initialisation (peak rate 1e-3 over 2000 steps, no moving average)
#: and gamma = 0.01. ``QFlowTransport()`` now fits maps with a faster
#: schedule, which fits the flow closer to the map but leaves sharper
#: differences between neighbouring intermediate distributions for the
#: classifiers: the telescoped log-ratio's error on ``make_mixture_pair``
#: grew from 0.194 to 0.241 nats with it, where one classifier's is 0.217
#: (docs/qflow.md, "The initial flow's schedule"). Pass it to a transport of
#: your own to keep a custom bridge as smooth:
#: ``QFlowTransport(**dict(BRIDGE_SCHEDULE, hidden_layer_sizes=(64, 64)))``.
#: Its flow widens with the data as the map's does (``"auto"``: three
#: layers of ``max(128, 2 d)``); up to 64 features that is the 128 units
#: every ratio figure on such data was measured with.
BRIDGE_SCHEDULE = MappingProxyType(  # read-only: it is the default bridge's
    dict(
        gamma=0.01,
        init_learning_rate_init=1e-3,
        init_max_iter=2000,
        init_ema_decay=0.0,
        # A bridge carries the product of the marginals onto the joint law;
        # between Gaussians that is a full-rank linear map, and a field of
        # 128 units has a Jacobian of rank at most 128. On the MI benchmark
        # (docs/telescoping.md) the "auto" width took d=160 from -19.5% to
        # -6.6% of the truth (40 nats) and d=320 from -61% to -54%, and left
        # d=80 within 10% (+8.4% -> +9.4%).
        hidden_layer_sizes="auto",
        # The map's Gaussian baseline velocity (on by default from 32
        # features on) is not measured as a bridge: every ratio and MI figure
        # was taken without it.
        baseline=None,
        # Nor is the map's reflow (on by default): straight paths end where
        # the initial flow's did, and the classifiers see other intermediate
        # distributions, so every ratio figure would move unmeasured.
        init_reflow_max_iter=0,
    )
)

# hidden_layer_sizes="auto": the first layer sets the rank of the log ratio's
# Hessian and widens with the data (skot._nets.full_rank_width); the layers
# after it need not: at d=200, (400, 128, 128) gave MI +0.7% in 438 s where
# (400, 400, 400) gave +8.2% in 913 s (docs/telescoping.md).
_AUTO_INNER_WIDTHS = (128, 128)


def _past_inner_width(n_features: int) -> bool:
    """Whether a first layer of 128 units falls short of the rank of a log
    ratio in ``n_features`` (past 64): where the "auto" rules widen the
    layer, or add the baseline or the quadratic part instead."""
    return full_rank_width(n_features) > _AUTO_INNER_WIDTHS[0]


_VALIDATION_ROWS = 8192  # cap on the rows the held-out score is computed on


def _log_mean_exp(a: np.ndarray, log_row_weights: np.ndarray | None = None) -> float:
    """log of the mean of exp(a), weighted by exp(log_row_weights) if given."""
    if log_row_weights is None:
        return float(np.logaddexp.reduce(a) - np.log(len(a)))
    return float(np.logaddexp.reduce(a + log_row_weights) - np.logaddexp.reduce(log_row_weights))


def _row_weights(sample_weight, X) -> np.ndarray | None:
    """The rows' own weights, checked (None stays None)."""
    weights = sample_weight_array(sample_weight, X)
    if weights is not None and not weights.sum() > 0:
        raise ValueError("sample_weight: the weights of the rows of X are all zero.")
    return weights


def _log(weights) -> np.ndarray | None:
    """log of the row weights (None stays None)."""
    if weights is None:
        return None
    with np.errstate(divide="ignore"):  # rows of weight 0 count for nothing
        return np.log(np.asarray(weights, dtype=np.float64))


def safeguarded_log_weights(
    log_ratio: np.ndarray,
    max_weight="sqrt-n",
    power=1.0,
    uncovered="spread",
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Log importance weights flattened by ``power``, capped at ``max_weight``
    times their mean over the rows (``"sqrt-n"``: the square root of the
    number of rows), and, with ``uncovered="spread"``, mixed with equal
    weights by the share of Q's mass the rows do not cover; in log space so
    that nothing overflows. Means over the rows are weighted by the rows'
    own ``sample_weight`` when given. See
    :meth:`TelescopingRatioEstimator.predict_weights`."""
    if isinstance(power, bool) or not isinstance(power, Real) or not 0 < power <= 1:
        raise ValueError(f"power must be a number in (0, 1]; got {power!r}.")
    if max_weight is not None and max_weight != "sqrt-n":
        if isinstance(max_weight, bool) or not isinstance(max_weight, Real) or max_weight <= 1:
            raise ValueError(
                f'max_weight must be "sqrt-n", a number above 1 or None; got {max_weight!r}.'
            )
    if uncovered not in ("spread", None):
        raise ValueError(f'uncovered must be "spread" or None; got {uncovered!r}.')
    dtype = log_ratio.dtype
    log_ratio = log_ratio.astype(np.float64)
    log_w = power * log_ratio
    n = len(log_w)
    if n == 0:
        return log_w.astype(dtype)
    log_s = _log(sample_weight)
    if max_weight is not None:
        cap = 0.5 * np.log(n) if max_weight == "sqrt-n" else np.log(max_weight)
        log_w = np.minimum(log_w, _log_mean_exp(log_w, log_s) + cap)
    # E_P[q/p] is the share of Q's mass where P has mass: below 1 when part
    # of Q lies where the rows of P never go. Weights can only move the
    # covered share; the rest is spread evenly, so that where the source has
    # no rows the weighting falls back on the unweighted source.
    log_covered = _log_mean_exp(log_ratio, log_s) if uncovered == "spread" else 0.0
    if log_covered < 0:
        log_w = np.logaddexp(
            log_covered + log_w - _log_mean_exp(log_w, log_s), np.log(-np.expm1(log_covered))
        )
    return log_w.astype(dtype)


class TelescopingRatioEstimator(SkotEstimator):
    r"""Log density ratio :math:`\log q(x)/p(x)` telescoped along a flow from P to Q.

    A single classifier between samples of P and Q estimates their log ratio
    badly when the two are far apart: it separates them perfectly long before
    it has learnt the ratio (the density chasm). Q-flow-ratio instead bridges
    P and Q by the intermediate distributions :math:`p_k` of an optimal
    transport flow, at the nodes :math:`t_0 = 0 < \dots < t_K = 1` of a time
    grid, and learns one time-conditioned network :math:`r(x, t)` whose
    integrals

    .. math::
        R_k(x) = \int_{t_{k-1}}^{t_k} r(x, t)\, dt \approx \log
        \frac{p_k(x)}{p_{k-1}(x)}

    minimise the logistic losses between neighbouring distributions,
    :math:`\sum_k \mathbb{E}_{p_{k-1}} \mathrm{softplus}(R_k) +
    \mathbb{E}_{p_k} \mathrm{softplus}(-R_k)`. The interval ratios telescope:

    .. math::
        \log \frac{q(x)}{p(x)} = \sum_{k=1}^K R_k(x) = \int_0^1 r(x, t)\, dt.

    Samples of the inner :math:`p_k` are the positions at :math:`t_k` of P's
    rows carried forwards by a :class:`QFlowTransport`, and of Q's rows
    carried backwards, half and half; the bridge starts at P's rows and ends
    at Q's, so it ends exactly at Q however well the flow fits. (The paper
    pushes P's rows only; that leaves regions of the test data with no
    training point at the later nodes, where the interval ratios are
    unconstrained.) Each integral
    is computed by two-point Gauss-Legendre quadrature (exact for cubics,
    like the authors' Simpson 3/8 rule, with half the evaluations), in
    training and at prediction alike.

    Data are standardised by the pooled mean and standard deviation of both
    samples; a log ratio is unchanged by a map applied to both distributions,
    so no correction is needed.

    Parameters
    ----------
    transport : QFlowTransport or None, default=None
        The flow that makes the bridge (``bridge="qflow"`` only). Fitted: used
        as it is. Not fitted: a clone is fitted from X to Y, with this
        estimator's ``random_state`` when its own is None. None: a
        ``QFlowTransport(**skot.BRIDGE_SCHEDULE)``, a smoother flow than
        ``QFlowTransport()``'s map (see ``BRIDGE_SCHEDULE``).
    bridge : {"qflow", "linear", "none"}, default="qflow"
        The intermediate distributions. ``"qflow"``: the transport flow's.
        ``"linear"``: TRE's waymarks :math:`\sqrt{1 - a_k^2}\, x + a_k y` with
        x from P and y from Q drawn independently, :math:`a_k = t_k`.
        ``"none"``: P and Q alone, one interval, a single classifier (the
        reference the others are measured against).
    n_intervals : int, default=8
        Intervals ``K`` of the uniform time grid of the bridge (ignored with
        ``bridge="none"``).
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Widths of the ratio network, which sees ``x``, ``t`` and two Fourier
        features of ``t``. ``"auto"``: ``(128, 128, 128)``, except past 64
        features with neither the baseline nor the quadratic part, where
        the first layer has ``2 * n_features`` units. The network reads
        ``x`` only through its first layer, so the Hessian of its log
        ratio in ``x`` has rank at most that layer's width, and between
        Gaussians the log ratio is a
        quadratic form of full rank: with 128 units mutual information at
        200 features (50 nats) came out 21% short, with 400 within 1%
        (docs/telescoping.md, "The ratio network widens with the data").
        The baseline and the quadratic part are of full rank themselves.
    baseline : "gaussian", "auto" or None, default="auto"
        ``"gaussian"``: fit a Gaussian to every distribution of the bridge
        (Ledoit-Wolf covariances, on the training rows) and add the log
        ratio of each interval's two Gaussians, a quadratic in ``x`` in
        closed form, to the network's. The quadratics telescope to the log
        ratio between the Gaussians fitted to P and to Q; the network
        learns what is not Gaussian in the ratio. Between laws with
        Gaussian tails the log ratio grows quadratically away from the
        rows, at full rank in high dimension, and a network of smooth
        activations cannot carry that growth; the baseline does, with the
        data's own curvature. On the mutual-information benchmark at 320
        features (80 nats) the Q-flow bridge's estimate went from -29.4%
        to -5.3% of the truth with it (docs/telescoping.md, "The Gaussian
        baseline").
        Class columns of a conditional fit do not enter it. ``"auto"``:
        on past 64 features (class columns included), where a network of
        128 units a layer falls short of the ratio's full rank; up to 64,
        off, which leaves every figure measured there as it was (with it
        there, mixture pairs gained and the digits ratio lost:
        docs/telescoping.md). None: the network alone.
    quadratic : bool or "auto", default="auto"
        Add to the network's output a quadratic form in ``x`` whose
        coefficients vary with ``t``,
        :math:`\sum_j c_j(t)\, (w_j \cdot x)^2 / \sqrt{d}` with ``d``
        learnt directions :math:`w_j` and :math:`c(t)` linear in the time
        features. A log ratio between laws with Gaussian tails grows
        quadratically away from the data, a network of smooth activations
        at most linearly; averaged over Q's rows (as mutual information
        is), the telescoped sum reads every interval's ratio far from that
        interval's training rows, so that growth decides the estimate in
        high dimension. ``"auto"``: on past 64 features (class columns of a
        conditional fit included) when the baseline is off there, and off
        otherwise (the baseline carries that growth). See
        docs/telescoping.md, "The quadratic part".
    activation : {"silu", "softplus", "tanh", "elu", "relu"}, default="silu"
    max_iter : int, default=2000
        Gradient steps (the ratio trains in one phase), over which the
        learning rate decays to zero on a cosine schedule.
    batch_size : int, default=512
        Rows drawn from each distribution of the bridge per step, and rows per
        batch at prediction.
    learning_rate_init : float, default=1e-3
        Initial Adam learning rate.
    tol : float, default=1e-4
        With ``early_stopping``: improvement of the held-out score, checked
        every 50 steps, below which a check counts as no improvement.
    n_iter_no_change : int, default=10
        With ``early_stopping``: checks without improvement after which
        training stops; the best parameters seen are kept.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows of X and of Y, score the
        network on their bridge (minus the telescoping loss) before training
        and every 50 steps, stop when the score stalls, and keep the
        best-scoring network.
    validation_fraction : float, default=0.1
    warm_start : bool, default=False
        Continue training the previous ratio network on the previous bridge
        (the transport and the standardisation of the first fit are kept).
    verbose : int, default=0
        Progress bars when positive (passed on to a transport fitted here).
    random_state : int, RandomState instance or None, default=None
        Seeds the network, the minibatches, the validation split, and the
        transport fitted here when it has no seed of its own.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...

    Attributes
    ----------
    ratio_ : torch.nn.Module
        The network :math:`r(x, t)`, on standardised coordinates.
    baseline_ : dict or None
        With the baseline on, the log ratios of the Gaussians of
        neighbouring distributions of the bridge, on standardised
        coordinates, as :math:`x^\top A_k x + b_k^\top x + c_k`:
        ``"quadratic"`` (``A``, shape ``(K, d, d)``), ``"linear"`` (``b``,
        ``(K, d)``) and ``"constant"`` (``c``, ``(K,)``). None without.
    transport_ : QFlowTransport or None
        The flow of the bridge (None unless ``bridge="qflow"``).
    conditions_ : ndarray of shape (n_classes,) or None
        The sorted class labels of a conditional fit (``condition``), which
        :meth:`score_samples` and :meth:`predict_weights` then take for
        their rows; None after an unconditional fit.
    grid_ : ndarray of shape (`n_intervals_` + 1,)
        Time grid of the bridge.
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        Pooled standardisation of the two samples.
    loss_curve_ : list of float
        Training loss averaged over every 50 steps (and the last ones).
    validation_scores_ : list of float or None
        With ``early_stopping``: the held-out score (minus the telescoping
        loss on the held-out rows, higher is better) of the starting network
        and at every check.
    best_validation_score_ : float or None
        The best of ``validation_scores_``: that of the network kept.
    n_iter_ : int
        Gradient steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.

    See Also
    --------
    QFlowTransport : the flow that makes the bridge.
    skot.mutual_information : mutual information through this estimator.

    References
    ----------
    C. Xu, X. Cheng and Y. Xie, "Computing high-dimensional optimal transport
    by flow neural networks", arXiv:2305.11857.
    B. Rhodes, K. Xu and M. U. Gutmann, "Telescoping density-ratio
    estimation", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skot import TelescopingRatioEstimator
    >>> rng = np.random.RandomState(0)
    >>> X, Y = rng.normal(size=(500, 2)), rng.normal(1.0, 1.0, size=(500, 2))
    >>> ratio = TelescopingRatioEstimator(bridge="linear", n_intervals=4, max_iter=100,
    ...                                   random_state=0).fit(X, Y)
    >>> ratio.score_samples(X[:3]).shape  # log q(x) - log p(x)
    (3,)
    >>> float(ratio.predict_weights(X, normalize=True).mean().round(6))
    1.0
    """

    _networks = ("ratio_",)

    _parameter_constraints: dict = {
        "transport": [HasMethods(["fit", "trajectory"]), None],
        "bridge": [StrOptions({"qflow", "linear", "none"})],
        "n_intervals": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list, StrOptions({"auto"})],
        "baseline": [StrOptions({"gaussian", "auto"}), None],
        "quadratic": ["boolean", StrOptions({"auto"})],
        "activation": [StrOptions(set(ACTIVATIONS))],
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
        transport=None,
        *,
        bridge="qflow",
        n_intervals=8,
        hidden_layer_sizes="auto",
        baseline="auto",
        quadratic="auto",
        activation="silu",
        max_iter=2000,
        batch_size=512,
        learning_rate_init=1e-3,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        verbose=0,
        random_state=None,
        device="auto",
    ):
        self.transport = transport
        self.bridge = bridge
        self.n_intervals = n_intervals
        self.hidden_layer_sizes = hidden_layer_sizes
        self.baseline = baseline
        self.quadratic = quadratic
        self.activation = activation
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

    # Domain adaptation: ``sample_domain`` is routed to fit without a
    # set_fit_request call, as in skada and QFlowTransport.
    __metadata_request__fit = {"sample_domain": True}

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self,
        X,
        y=None,
        *,
        sample_domain=None,
        sample_weight=None,
        target_sample_weight=None,
        condition=None,
        target_condition=None,
    ):
        r"""Fit the log ratio between the distributions of X's rows (P) and y's (Q).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Sample of P; with ``sample_domain``, the stacked rows of both
            domains.
        y : array-like of shape (n_target_samples, n_features) or None
            Sample of Q (written ``Y`` in the docs); its number of rows may
            differ from X's. None, or a 1-D array of labels (as a Pipeline
            passes), takes Q = N(0, I).
        sample_domain : array-like of shape (n_samples,), default=None
            Domain adaptation (skada's convention): rows of X with a
            non-negative domain are the source sample P, rows with a negative
            one the target sample Q, and ``y`` (labels, -1 on target rows) is
            ignored. :meth:`predict_weights` on source rows then gives the
            importance weights of covariate-shift correction; see
            :class:`skot.da.ImportanceWeightedEstimator`.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row of X counts (with ``sample_domain``, the rows
            of both domains): the ratio is that of the weighted empirical
            distributions. Minibatches draw rows in proportion to their
            weights, so a row of integer weight k counts as k copies of it;
            rows of zero weight are dropped. The Q-flow bridge's transport
            is fitted with the same weights. None weighs rows equally.
        target_sample_weight : array-like of shape (n_target_samples,), default=None
            The same for the rows of ``y``; not with ``sample_domain``
            (``sample_weight`` then weighs both domains) nor without ``y``.
        condition : array-like of shape (n_samples,), default=None
            Class labels of the rows of X, for the conditional ratio
            :math:`\log q(x \mid c) - \log p(x \mid c)`: every bridge then
            runs within the classes, the ratio network reads the class, and
            the Q-flow bridge is a conditional QFlowTransport
            (docs/qflow.md, "Conditional transport"). With
            ``sample_domain``, the labels of the rows of both domains.
        target_condition : array-like of shape (n_target_samples,), default=None
            The class labels of the rows of ``y``.

        Returns
        -------
        self : TelescopingRatioEstimator
        """
        samples = self._validate_fit_samples(
            X, y, sample_domain, sample_weight, target_sample_weight, condition, target_condition
        )
        X, Y, warm, dev, rng, gen, wx, wy, _, conditions = samples
        classes, codes = self._fit_conditions(conditions, warm)
        k = 0 if classes is None else len(classes)

        if warm:
            mean, scale, transport = self.mean_, self.scale_, self.transport_
            grid = torch.as_tensor(self.grid_, dtype=torch.float32, device=dev)
            ratio = copy.deepcopy(module_to(self.ratio_, dev))
            baseline = self._fitted_baseline()
        else:
            both = stacked_weights((X, wx), (Y, wy))
            mean, scale = standardisation(np.concatenate([X, Y]), both)
            grid = time_grid(1 if self.bridge == "none" else self.n_intervals, device=dev)
            transport = None
            if self.bridge == "qflow":
                transport = self._fitted_transport(X, Y, rng, wx, wy, conditions, classes)
            d, act = X.shape[1] + k, self.activation
            quadratic, with_baseline = self._quadratic(d), self._baseline(d)
            sizes = self._ratio_widths(d, quadratic)
            ratio = build_module(lambda: TimeMLP(d, 1, sizes, act, quadratic=quadratic), dev, gen)

        # The held-out split draws row numbers, so that the class codes
        # follow their rows (the same draws as splitting the rows).
        rows_x, rows_y = np.arange(len(X)), np.arange(len(Y))
        val = None
        if self.early_stopping:
            val_x, rows_x, wx = split_weighted_rows(rows_x, wx, self.validation_fraction, rng)
            val_y, rows_y, wy = split_weighted_rows(rows_y, wy, self.validation_fraction, rng)
            val = self._bridge(
                X,
                Y,
                (val_x, val_y),
                grid,
                transport,
                mean,
                scale,
                dev,
                classes=classes,
                codes=codes,
            )
        train = self._bridge(
            X,
            Y,
            (rows_x, rows_y),
            grid,
            transport,
            mean,
            scale,
            dev,
            (wx, wy),
            classes=classes,
            codes=codes,
        )
        if not warm:
            # The Gaussians of the training rows; a warm start keeps the
            # first fit's, which the network has learnt to correct.
            baseline = self._gaussian_baseline(train) if with_baseline else None
        network = ratio if baseline is None else GaussianBaselineRatio(ratio, baseline, grid)
        record = self._train(network, train, val, gen)

        # Fitted state is written only now: a failure above leaves the
        # estimator as it was.
        self.ratio_ = ratio.eval().requires_grad_(False)
        self.baseline_ = baseline
        self.transport_ = transport
        self.conditions_ = classes
        self.grid_ = grid.cpu().double().numpy()
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.loss_curve_ = record.loss_curve
        self.validation_scores_ = record.validation_scores
        self.best_validation_score_ = record.best_validation_score
        self.n_iter_ = record.n_iter
        return self

    def _baseline(self, n_features: int) -> bool:
        """Whether the Gaussian baseline is on, ``"auto"`` resolved for
        ``n_features`` (the class columns of a conditional fit included)."""
        if self.baseline != "auto":
            return self.baseline is not None
        # Past 64 features the network alone cannot carry the log ratio's
        # full-rank growth (docs/telescoping.md, "The Gaussian baseline").
        return _past_inner_width(n_features)

    def _quadratic(self, n_features: int) -> bool:
        """``quadratic``, with ``"auto"`` resolved for ``n_features`` (the
        class columns of a conditional fit included)."""
        if self.quadratic != "auto":
            return bool(self.quadratic)
        if self._baseline(n_features):  # the baseline carries the quadratic growth
            return False
        return _past_inner_width(n_features)

    def _gaussian_baseline(self, bridge) -> dict:
        """The interval quadratics of Gaussians fitted to every distribution
        of ``bridge``."""
        fits = [weighted_gaussian(parts) for parts in bridge.node_samples()]
        return fit_interval_quadratics(*zip(*fits))

    def _fitted_baseline(self) -> dict | None:
        # Estimators fitted before the baseline existed have none.
        return getattr(self, "baseline_", None)

    def _network(self, dev) -> torch.nn.Module:
        """The fitted log-ratio field: the network, plus the baseline's quadratics."""
        baseline = self._fitted_baseline()
        if baseline is None:
            return self.ratio_
        grid = torch.as_tensor(self.grid_, dtype=torch.float32, device=dev)
        return GaussianBaselineRatio(module_to(self.ratio_, dev), baseline, grid)

    def _ratio_widths(self, n_features: int, quadratic: bool) -> tuple[int, ...]:
        """``hidden_layer_sizes``, with ``"auto"`` resolved for ``n_features``
        (the class columns of a conditional fit included)."""
        if self.hidden_layer_sizes != "auto":
            return tuple(self.hidden_layer_sizes)
        # The quadratic part and the baseline are of full rank: no need to widen.
        if quadratic or self._baseline(n_features):
            return (_AUTO_INNER_WIDTHS[0], *_AUTO_INNER_WIDTHS)
        return (full_rank_width(n_features), *_AUTO_INNER_WIDTHS)

    def _fitted_transport(self, X, Y, rng, weights_x, weights_y, conditions=None, classes=None):
        if self.transport is None:
            transport = QFlowTransport(**BRIDGE_SCHEDULE, device=self.device, verbose=self.verbose)
        else:
            try:
                check_is_fitted(self.transport)
            except NotFittedError:
                transport = clone(self.transport)
            else:
                if self.transport.n_features_in_ != X.shape[1]:
                    raise ValueError(
                        f"transport was fitted on {self.transport.n_features_in_} features, "
                        f"but X has {X.shape[1]}."
                    )
                fitted = getattr(self.transport, "conditions_", None)
                fitted = None if fitted is None else fitted.tolist()
                wanted = None if classes is None else classes.tolist()
                if fitted != wanted:
                    raise ValueError(
                        f"transport was fitted with classes {fitted}, but the ratio is "
                        f"fitted with {wanted}."
                    )
                return self.transport
        if transport.get_params().get("random_state", 0) is None:
            transport.set_params(random_state=int(rng.randint(2**31)))
        extra = {"sample_weight": weights_x, "target_sample_weight": weights_y}
        if conditions is not None:
            extra.update(condition=conditions[0], target_condition=conditions[1])
        # Only what exists is passed: a transport of the user's own need not
        # take weights or conditions.
        return transport.fit(X, Y, **{key: v for key, v in extra.items() if v is not None})

    def _bridge(
        self,
        X,
        Y,
        rows,
        grid,
        transport,
        mean,
        scale,
        dev,
        weights=(None, None),
        *,
        classes=None,
        codes=(None, None),
    ):
        """The bridge from ``rows`` of X to ``rows`` of Y (a pair of row
        numbers), on standardised coordinates, drawing rows in proportion to
        ``weights``. With ``classes``, the rows' ``codes`` follow them as
        one-hot columns, and the bridge runs within the classes."""
        k = 0 if classes is None else len(classes)
        (X, codes_x), (Y, codes_y) = (
            (Z[r], None if c is None else c[r]) for Z, c, r in zip((X, Y), codes, rows)
        )

        def standardised(a, a_codes):
            a = to_tensor((a - mean) / scale, dev)
            return with_one_hot(a, a_codes, k) if k else a

        if self.bridge == "none":
            return DirectBridge(standardised(X, codes_x), standardised(Y, codes_y), weights, k)
        if self.bridge == "linear":
            ends = standardised(X, codes_x), standardised(Y, codes_y)
            return LinearBridge(*ends, grid, weights, k)
        times = grid.cpu().double().numpy()
        # Labels only for a conditional transport: a transport of the user's
        # own need not take them.
        labels_x = {} if not k else {"condition": classes[codes_x]}
        labels_y = {} if not k else {"condition": classes[codes_y]}
        forward = transport.trajectory(X, times=times, **labels_x)  # [n, K + 1, d]
        backward = transport.trajectory(Y, times=times, inverse=True, **labels_y)
        ends = standardised(forward, codes_x), standardised(backward, codes_y)
        return FlowBridge(*ends, grid, weights, k)

    def _train(self, ratio, train, val, gen):
        """The telescoping loss on minibatches of every distribution of the
        bridge; with ``val``, minus that loss on its rows is the held-out score."""
        batch = min(self.batch_size, len(train.X), len(train.Y))

        def loss():
            return {"loss": telescoping_loss(ratio, train.draw(batch, gen), train.grid)}

        return train_network(
            ratio,
            loss,
            max_iter=self.max_iter,
            learning_rate_init=self.learning_rate_init,
            name="Q-flow-ratio",
            hint="Try a smaller learning_rate_init.",
            validate=(lambda: -self._validation_loss(ratio, val)) if val is not None else None,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )

    def _validation_loss(self, ratio, val):
        # Fixed rows, so that checks are comparable with one another.
        gen = torch.Generator(device=val.Y.device).manual_seed(0)
        n = min(len(val.X), _VALIDATION_ROWS)
        ix = torch.arange(n, device=val.Y.device)
        iy = torch.randint(len(val.Y), (n,), generator=gen, device=val.Y.device)
        total = 0.0
        with torch.no_grad():
            for s in batches(n, self.batch_size):
                if val.n_conditions:
                    # Rows drawn class by class (from the fixed generator),
                    # so that each minibatch pairs rows within their class.
                    states = val.draw(max(s.stop - s.start, val.n_conditions), gen)
                else:
                    states = val.states(ix[s], iy[s])
                total += telescoping_loss(ratio, states, val.grid).item() * (s.stop - s.start)
        return total / n

    # ------------------------------------------------------------ predict

    def score_samples(self, X, condition=None):
        r"""Estimated log ratio :math:`\log q(x) - \log p(x)` of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, after a conditional fit (required
            then, refused otherwise): the ratio is then
            :math:`\log q(x \mid c) - \log p(x \mid c)`.

        Returns
        -------
        ndarray of shape (n_samples,)
            In nats, in X's float dtype.
        """
        X, dev = self._validate_predict_data(X)
        return self._log_ratio(X, dev, self._prediction_codes(condition, len(X)))

    def _log_ratio(self, X, dev, codes=None):
        """:meth:`score_samples` of rows already validated, of classes ``codes``."""
        grid = torch.as_tensor(self.grid_, dtype=torch.float32, device=dev)
        K = len(grid) - 1
        network = self._network(dev)

        def log_ratio(x):
            R = integrated_log_ratio(network, x.expand(K, *x.shape), grid[:-1], grid[1:])
            return R.sum(0)

        Xn = (X - self.mean_) / self.scale_
        if codes is not None:
            Xn = with_one_hot(Xn, codes, len(self.conditions_))
        out = predict_in_batches(log_ratio, Xn, self.batch_size, dev)
        return check_finite(out, "score_samples").astype(X.dtype, copy=False)

    def predict_weights(
        self,
        X,
        normalize=False,
        condition=None,
        *,
        max_weight="sqrt-n",
        power=1.0,
        uncovered="spread",
        sample_weight=None,
    ):
        r"""Importance weights ``q(x) / p(x)`` of the rows of X, with safeguards.

        A few rows where the estimated ratio is huge can take nearly all the
        weight, and an estimator trained on such weights learns from those
        rows alone. Three safeguards, applied in this order:

        - flattening (Shimodaira 2000): the weights raised to ``power`` in
          (0, 1], which trades the weighting's bias for its variance
          (``power=0`` would be no weighting at all);
        - truncation (Ionides 2008): no weight above ``max_weight`` times
          the mean (flattened) weight over the rows of X; the default
          ``"sqrt-n"`` caps at :math:`\sqrt{n}` times the mean, for ``n``
          rows, a cap that grows with the rows, so that the truncated
          weights stay consistent;
        - the uncovered share (``uncovered="spread"``): the mean of the
          ratio over rows of P, :math:`c = \mathbb{E}_P[q/p]`, is the share
          of Q's mass that lies where P has mass (:meth:`covered_share`).
          Where :math:`c < 1` no weighting of P's rows reaches the rest of
          Q, so the weights are :math:`c\, w / \bar w + (1 - c)`: the
          safeguarded weights :math:`w` carry the covered share and every
          row an equal part of the uncovered one, as if Q looked like P
          where P has no rows. With domains that overlap the weights are
          unchanged (:math:`c \ge 1`) or nearly so; with domains that do
          not, they tend to equal weights (no adaptation) rather than to one
          row.

        See docs/telescoping.md, "Importance weights", for how the defaults
        were measured.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P (the source rows, for covariate-shift correction): the
            cap and the covered share are computed over them.
        normalize : bool, default=False
            Rescale the weights to mean 1 over the rows of X (computed stably
            from the log ratios, so large ratios do not overflow).
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, after a conditional fit.
        max_weight : "sqrt-n", float > 1 or None, default="sqrt-n"
            The cap, as a multiple of the mean weight over the rows of X;
            None for no cap. The cap depends on the rows passed together.
        power : float in (0, 1], default=1.0
            The flattening exponent; 1 leaves the ratios as estimated.
        uncovered : "spread" or None, default="spread"
            ``"spread"`` gives the share of Q's mass that the rows of X do
            not cover to every row alike (the weights then average to 1 when
            that share is positive); None leaves the weights as the ratio
            gives them.
        sample_weight : array-like of shape (n_samples,), default=None
            The rows' own weights, when X is a weighted sample of P (as the
            ratio was fitted with ``sample_weight``): the means over the
            rows (the cap's, the covered share's, ``normalize``'s) are then
            weighted by them. The weights returned are the importance
            weights alone; a weighted fit takes their product with
            ``sample_weight``.

        Returns
        -------
        ndarray of shape (n_samples,)

        See Also
        --------
        effective_sample_size : What the weights leave of the rows.
        covered_share : The share of Q's mass that the rows of X cover.
        """
        row_weights = _row_weights(sample_weight, X)
        log_w = safeguarded_log_weights(
            self.score_samples(X, condition=condition), max_weight, power, uncovered, row_weights
        )
        dtype = log_w.dtype
        log_w = log_w.astype(np.float64)
        if normalize:
            log_w = log_w - _log_mean_exp(log_w, _log(row_weights))
        elif log_w.max(initial=-np.inf) > np.log(np.finfo(dtype).max):
            raise OverflowError(
                f"A log ratio of {log_w.max():.1f} overflows exp() in {dtype}; use "
                "predict_weights(X, normalize=True) or score_samples(X)."
            )
        return np.exp(log_w).astype(dtype)

    def covered_share(self, X, condition=None, sample_weight=None):
        r"""The share of Q's mass that lies where the rows of X (rows of P) are.

        :math:`\min(1, \frac1n \sum_i q(x_i)/p(x_i))`, the mean of the
        estimated ratio over the rows, which estimates
        :math:`\mathbb{E}_P[q/p] = Q(p > 0)`. Near 1 where P's support
        holds Q's; near 0 where the two barely overlap, and importance
        weighting cannot correct the shift. It is only as good as the
        ratio's level: a ratio that is overconfident far from the data (as
        one classifier between separable samples is) drives it towards 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P.
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, after a conditional fit.
        sample_weight : array-like of shape (n_samples,), default=None
            The rows' own weights, when X is a weighted sample of P: the
            mean is then weighted by them.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from skot import TelescopingRatioEstimator
        >>> rng = np.random.RandomState(0)
        >>> X = rng.normal(0, 1, (500, 1))
        >>> Y = np.r_[rng.normal(0.5, 1, (250, 1)), rng.normal(12, 1, (250, 1))]
        >>> ratio = TelescopingRatioEstimator(bridge="none", max_iter=300, random_state=0)
        >>> share = ratio.fit(X, Y).covered_share(X)  # half of Y lies beyond X's rows
        >>> bool(0.3 < share < 0.7)
        True
        """
        log_s = _log(_row_weights(sample_weight, X))
        log_ratio = self.score_samples(X, condition=condition).astype(np.float64)
        return float(np.exp(min(_log_mean_exp(log_ratio, log_s), 0.0)))

    def effective_sample_size(
        self,
        X,
        condition=None,
        *,
        max_weight="sqrt-n",
        power=1.0,
        uncovered="spread",
        sample_weight=None,
    ):
        r"""Kish's effective sample size of the weights of the rows of X.

        :math:`(\sum_i w_i)^2 / \sum_i w_i^2`, between 1 (one row takes all
        the weight) and the number of rows (equal weights): roughly how many
        rows an estimator weighted by :meth:`predict_weights` (with the same
        safeguards) learns from. With ``sample_weight``, :math:`w_i` is the
        product of a row's importance weight and its own weight.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        condition, max_weight, power, uncovered, sample_weight
            As in :meth:`predict_weights`.

        Returns
        -------
        float
        """
        w = self.predict_weights(
            X,
            normalize=True,
            condition=condition,
            max_weight=max_weight,
            power=power,
            uncovered=uncovered,
            sample_weight=sample_weight,
        ).astype(np.float64)
        row_weights = _row_weights(sample_weight, X)
        return kish_effective_size(w if row_weights is None else w * row_weights)

    def score(self, X, y=None, condition=None, target_condition=None):
        r"""Held-out criterion, higher is better: minus the balanced logistic loss.

        :math:`-\big(\mathrm{mean}_X\, \mathrm{softplus}(\hat R) +
        \mathrm{mean}_Y\, \mathrm{softplus}(-\hat R)\big)` of the estimated
        log ratio :math:`\hat R`. It is maximal for the true log ratio, and
        it does not depend on the bridge or the grid, so ``GridSearchCV`` can
        compare them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out sample of P.
        y : array-like of shape (n_target_samples, n_features) or None
            Held-out sample of Q; a draw from N(0, I) when None or 1-D.
        condition, target_condition : array-like, default=None
            After a conditional fit, the class labels of the rows of X and
            of y.

        Returns
        -------
        float
        """
        X, dev = self._validate_predict_data(X)
        Y = score_target_sample(y, X, self)
        codes_x = self._prediction_codes(condition, len(X))
        codes_y = self._prediction_codes(target_condition, len(Y), "target_condition")
        # On the validated arrays: the public method would warn that they
        # have no feature names when the fit was given a DataFrame.
        r_p = torch.as_tensor(self._log_ratio(X, dev, codes_x), dtype=torch.float64)
        r_q = torch.as_tensor(self._log_ratio(Y, dev, codes_y), dtype=torch.float64)
        return -float(F.softplus(r_p).mean() + F.softplus(-r_q).mean())

    # ------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
