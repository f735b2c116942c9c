"""Q-flow: an invertible neural-ODE flow from P to Q with least W2 cost."""

from __future__ import annotations

import copy
import dataclasses
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if

from ._base import SkotEstimator, check_finite, predict_in_batches
from ._conditions import with_one_hot
from ._criteria import transport_score
from ._device import build_module, module_to, to_numpy, to_tensor
from ._domains import domain_array
from ._flow_matching import FlowMatchingConfig, distil_joined_flow, train_ot_cfm
from ._gaussian_flow import GaussianOTVelocity, fit_gaussian_ot
from ._log_density import (
    EXACT_DIVERGENCE_MAX_FEATURES,
    end_and_log_det,
    standard_normal_log_density,
)
from ._nets import ACTIVATIONS, ConditionedField, TimeMLP, full_rank_width
from ._ode import SOLVERS, integrate, integrate_in_batches, time_grid
from ._otflow import otflow_config
from ._potential_training import fit_potential
from ._refinement import RefinementConfig, inference_rows, refine
from ._reflow import straight_line_pairs, train_reflow
from ._validation import score_target_sample
from ._weights import split_weighted_rows, weighted_mean_var

__all__ = ["QFlowTransport"]


def _is_normalizing_flow(flow) -> bool:
    """Whether ``score_samples`` applies: before a fit (which then says so),
    or after a fit to N(0, I)."""
    if getattr(flow, "normalizing_flow_", True):
        return True
    raise AttributeError(
        "score_samples needs a flow to N(0, I), fitted by fit(X) without a target "
        "sample; this one was fitted to a sample of Q, whose density is unknown."
    )


_DISTIL_ROWS = 8192  # trajectories regressed on by the init="otflow" distillation
# init_max_iter="auto": the OT-CFM initialisation's steps grow with the rows it
# learns from, as passes over the smaller sample, within bounds. At the peak
# rate 5e-3, 4000 steps fit non-linear maps on 16384 rows up to 2.5x better
# than 2000, but on a few thousand rows they fit the sample's noise (a
# Gaussian pair in d=12 on 4000 rows: L2-UVP 0.78 with 2000 steps, 1.81 with
# 4000), as do the 256 passes that 4000 steps make there (docs/qflow.md, "The
# initial flow's schedule").
_AUTO_INIT_PASSES = 128
_AUTO_INIT_STEPS = (2000, 4000)  # fewest and most
# init_reflow_max_iter="auto": one round of reflow of half the
# initialisation's steps (2000 after the 4000 of 2^14 rows, where 2000 was
# measured). Its targets are fixed lines, not minibatch pairings, so it needs
# fewer steps than the initialisation: on 2000-3000 rows of three pairs no
# benchmark names, 1000 and 2000 steps after 2000 tied (docs/qflow.md,
# "Straightening the initial flow").
_AUTO_REFLOW_SHARE = 0.5
# hidden_layer_sizes="auto": three layers of max(128, 2 d) units. The field's
# Jacobian has rank at most its narrowest width, and the OT map between
# Gaussians is full-rank: at d=256 a width of 128 gave L2-UVP 5.96, 256 gave
# 3.65 and 512 gave 3.51; at d=64, 256 units did worse than 128 (1.455
# against 1.369) without the baseline, so without it the width only grows
# past d=64 (docs/qflow.md); with it, see _BASELINE_MIN_WIDTH below.
_AUTO_DEPTH = 3
# baseline="auto": the Gaussian baseline velocity from 32 features on, and
# with it hidden_layer_sizes="auto" at least 256 units. Without the baseline
# 256 units fit non-Gaussian pairs better and Gaussian ones worse (the
# affine part learnt less well); with it, better on eight of nine pairs
# from d=32 to 64 (at d=64 L2-UVP 1.290 -> 1.153 on a Gaussian pair, 6.906
# -> 5.387 on a mixture's known map; docs/qflow.md, "The Gaussian baseline
# velocity").
# Below 32 features it was a worse start than none (a Student t pair at
# d=8: 2.121 -> 2.561).
_AUTO_BASELINE_FEATURES = 32
_BASELINE_MIN_WIDTH = 256
# Held-out rows of each sample scored after every refinement phase: the score
# solves two exact assignments, cubic in the rows.
_SCORED_ROWS = 1000


class QFlowTransport(OneToOneFeatureMixin, TransformerMixin, SkotEstimator):
    r"""Optimal transport map between two samples by a refined neural-ODE flow.

    Q-flow learns a velocity field :math:`f(x, t)` whose flow
    :math:`T_0^1` carries the source distribution P (rows of ``X``) onto the
    target Q (rows of ``Y``) with least quadratic transport cost. Training has
    two stages:

    1. **Initialisation** by flow matching with minibatch exact OT pairing
       (OT-CFM), which gives an invertible flow from P to Q that is close to,
       but not, the optimal one.
    2. **Refinement** by the paper's Algorithm 1: ``n_flips`` rounds, each a
       P->Q phase and a Q->P phase, of ``max_iter`` flow updates minimising

       .. math::
           \mathcal{L}^{P\to Q}(\theta) = -\frac1N \sum_i r_1(T_0^1(X_i))
           + \gamma \sum_{k=1}^K \frac{1}{h_k}\,\frac1N \sum_i
           \|X_i(t_k) - X_i(t_{k-1})\|^2,

       where :math:`r_1 \approx \log q / p_1` is a classifier between pushed
       source points and target points (so the first term estimates
       :math:`\mathrm{KL}(p_1 \| q)`), refreshed ``classifier_steps`` times
       after every flow update; the Q->P phase is the same with the flow run
       backwards from Y towards X. The learning rates halve after every round.

    The flow is integrated with classical RK4 on the ``n_intervals``
    intervals of a uniform grid on :math:`[0, 1]`: ``n_substeps`` steps on
    each while training, by differentiating through the solver, and
    ``n_substeps_eval`` steps on each when points are mapped.

    Data are centred and scaled by one common shift and one scalar before
    training (both samples alike); OT maps for the squared cost commute with
    such maps, so the fitted map and its costs are reported in the original
    units while ``gamma`` stays unit-free.

    Parameters
    ----------
    gamma : float, default=0.002
        Weight of the transport cost against the KL term. Larger values
        straighten and shorten paths but let the pushed distribution fall
        short of Q; select it with :meth:`score` and ``GridSearchCV``. The
        classifiers do not see a small shortfall of the pushed sample, so a
        larger weight shortens maps until they do: 0.01, the default before,
        made a non-linear map in d=8 worse than its initialisation (L2-UVP
        1.13 -> 1.42, against 1.15 at 0.002; docs/qflow.md).
    n_intervals : int, default=4
        Intervals ``K`` of the time grid on which the transport cost is
        discretised and trajectories are reported.
    n_substeps : int, default=1
        RK4 steps per interval while training. Every refinement update
        back-propagates through ``4 * n_intervals * n_substeps`` network
        evaluations, so this sets the refinement's cost. The paper uses 3 to
        5; one gives the same maps (measured in docs/qflow.md) with a third
        of the evaluations, because the transport term keeps the paths
        nearly straight.
    n_substeps_eval : int, default=3
        RK4 steps per interval when points are mapped (``transform``,
        ``inverse_transform``, ``trajectory``, ``transport_cost``, ``score``
        and the held-out checks of ``early_stopping``), and when the reflow
        (``init_reflow_max_iter``) maps the training rows to build its
        lines, so that they end where ``transform`` will. Use at least
        ``n_substeps``: more steps make the inverse closer to exact.
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Widths of the velocity network, which sees ``x``, ``t`` and two
        Fourier features of ``t``. ``"auto"``: three layers of width
        ``max(128, 2 * n_features)``, and at least 256 where the Gaussian
        baseline is on from 32 features. The velocity's Jacobian in ``x``
        has rank at most the narrowest layer's width, and the OT map
        between two Gaussians is a full-rank linear map: a field narrower
        than the data cannot carry it. Measured on Gaussian pairs of 2^14
        rows (L2-UVP %, initialisation alone, seed 7, docs/qflow.md): d=128
        2.342 at width 128, 2.062 at 256; d=256 5.958 at 128, 3.645 at
        256, 3.505 at 512; at d=64 width 256 without the baseline was worse
        than 128 (1.455 against 1.369); with it, better on eight of nine
        pairs tried from d=32 to 64.
    baseline : {"auto", "gaussian"} or None, default="auto"
        ``"gaussian"``: the velocity is the network's plus that of the OT
        map between Gaussians fitted to the training rows of P and of Q
        (weighted means and covariances, Ledoit-Wolf's with fewer than
        twice as many rows as features), an affine field in closed form
        (docs/qflow.md, "The Gaussian baseline velocity"). The network
        then learns only how the transport departs from the Gaussians'.
        Gaussian pairs, 2^14 rows, default fits otherwise (L2-UVP %,
        docs/qflow.md): d=128 2.152 -> 1.791, d=256 3.601 -> 1.910.
        ``"auto"``: ``"gaussian"`` from 32 features on (class columns not
        counted), with a field of at least 256 units, and None below 32,
        where on non-Gaussian pairs the Gaussians' map was a worse start
        than none (a Student t pair in d=8: 2.121 -> 2.561); also None with
        ``init="otflow"``. From 32 features on, known-map pairs no benchmark
        names went 6.906 -> 5.387 (mixture, d=64) and 8.583 -> 8.295
        (Student t, d=48).
        None: the network alone. ``"gaussian"`` does not combine with
        ``init="otflow"``.
    classifier_hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        Widths of the two classifiers of the KL terms.
    activation : {"silu", "softplus", "tanh", "elu", "relu"}, default="silu"
        Activation of every network. The flow needs a smooth one for RK4 to
        be accurate; ``"softplus"`` has ``beta=20`` as in the authors' code.
    init : {"ot-cfm", "otflow"}, default="ot-cfm"
        Initial flow. ``"ot-cfm"``: flow matching with minibatch OT pairing.
        ``"otflow"``: the paper's other initialisation, a flow through
        N(0, I): two :class:`OTFlowDensity` CNFs, P -> N(0, I) and
        Q -> N(0, I), joined into P -> N(0, I) -> Q (the first on
        :math:`[0, 1/2]`, the second reversed on :math:`[1/2, 1]`) and
        distilled into the velocity network by regression on its velocities.
        Either is then straightened by ``init_reflow_max_iter``'s reflow,
        which takes the detour through N(0, I) out of ``"otflow"``'s paths;
        set it to 0 to keep the joined flow.
    init_params : dict or None, default=None
        Parameters of the two :class:`OTFlowDensity` fits of
        ``init="otflow"``; their ``max_iter`` defaults to ``init_max_iter``
        (2000 when it is ``"auto"``).
    init_max_iter : int or "auto", default="auto"
        Gradient steps of the initialisation (of each CNF and of the
        distillation with ``init="otflow"``). ``"auto"``: 128 passes over the
        smaller sample's training rows in minibatches of ``init_batch_size``,
        at least 2000 steps and at most 4000 (2000 with ``init="otflow"``);
        so 2000 up to 4000 rows and 4000 from 8000. More steps fit
        non-linear maps of many rows better, and fit the noise of few rows
        (docs/qflow.md, "The initial flow's schedule"). ``init_n_iter_``
        holds the steps run.
    init_batch_size : int, default=256
        Minibatch of the initialisation; pairs within it are matched by exact
        OT, so larger batches give straighter initial flows at cubic cost.
    init_ot_batch_size : int or None, default=None
        Rows of each sample matched by one exact OT problem in the
        initialisation. An int: that many rows are drawn and paired at once,
        and the minibatches of ``init_batch_size`` are drawn from their pairs
        until they have drawn 8 times as many rows; then a new pool is drawn.
        A row in a tail is then paired against more candidates than a
        minibatch holds, for about the same pairing cost per row drawn, and
        the network's minibatch stays as small; but each pair is reused, so
        the targets are less varied. Measured with 1024 (docs/qflow.md,
        "Pairing pools"): on the benchmark's heavy-tailed 2-D pair L2-UVP
        1.07% -> 0.35%, and 2.44% -> 2.33% at d=8; worse on another 2-D
        draw, on a pair with a Gaussian source at d=8 and from d=16 on.
        None (the default): each minibatch is paired alone. Ignored with
        ``init="otflow"``.
    init_reflow_max_iter : int or "auto", default="auto"
        Steps of one round of rectified flow ("reflow") after the
        initialisation: every training row of P is paired with its image
        under the initial flow, every row of Q with its pre-image, and the
        velocity is regressed on the straight lines between them, in
        minibatches of ``init_batch_size`` at ``init_learning_rate_init``
        with ``init_ema_decay`` (docs/qflow.md, "Straightening the initial
        flow"). The images are integrated with RK4, ``n_substeps_eval``
        steps per interval. The paths straighten, so the discretised path
        cost, which :meth:`transport_cost` reports by default, comes down
        to the map's own cost: OT-CFM's paths bend where its minibatch
        pairings cross. ``"auto"``: half the initialisation's steps
        (``init_max_iter`` resolved), so 2000 after the 4000 of 2^14 rows.
        Default fits on the benchmarks' pairs of 2^14 rows, L2-UVP % without
        -> with it (README): Gaussians 1.172 -> 0.737 at d=64, 1.808 ->
        1.035 at d=128 and 1.937 -> 0.783 at d=256, the path cost from
        1.09-1.12 to 0.994-0.997 of W2^2; known maps from a Student t 1.074
        -> 0.533 in 2-D, 2.435 -> 2.092 at d=8 and 7.235 -> 6.185 at d=32,
        where the map's cost also falls (1.007 -> 0.915 of W2^2); from
        mixtures 0.3-8% worse, and moons to checkerboard on 4000 rows 3%
        worse. On 2000-3000 rows of pairs no benchmark names, the half and
        the full round tie (docs/qflow.md). 0 keeps the initial flow as
        trained.
    init_learning_rate_init : float, default=5e-3
        Adam learning rate of the initialisation, decayed to zero along a
        cosine over ``init_max_iter``. 1e-3, the default before, left
        non-linear maps under-fitted (L2-UVP 1.3-2.6x higher in
        ``benchmarks/results/qflow_init_steps.md``); telescoped
        ratios keep it (``skot.BRIDGE_SCHEDULE``), as their classifiers
        resolve a smoother bridge better.
    init_ema_decay : float, default=0.999
        Decay of an exponential moving average of the OT-CFM flow's
        parameters over its steps (with the warm-up of ``ema_decay``); the
        initialisation ends at that average. 0 keeps the last step. With
        ``early_stopping`` the best-scoring flow is kept instead. It tempers
        the fit to sample noise that the peak rate 5e-3 would otherwise
        make (docs/qflow.md). Over fewer than 1000 steps the average is a
        plain mean of every step, the first ones included: set a smaller
        decay, or 0, with a short ``init_max_iter``.
    sigma : float, default=0.0
        Noise of the flow-matching interpolant.
    n_flips : int, default=2
        Rounds of refinement, each a P->Q then a Q->P phase. 0 keeps the
        initial flow.
    max_iter : int, default=100
        Flow updates in each phase.
    batch_size : int, default=512
        Minibatch of the refinement, and rows per batch at prediction.
    learning_rate_init : float, default=2e-5
        Adam learning rate of the flow in the first refinement round. The
        refinement follows a classifier fitted to finite samples; a larger
        rate lets the flow follow that classifier's noise (measured on
        Gaussians in d=10: 1e-4 degrades an accurate initialisation, 2e-5 does
        not).
    ema_decay : float, default=0.995
        Decay of an exponential moving average of the flow's parameters over
        the updates of each refinement phase; each phase ends at that
        average (a plain mean of its first ``1 / (1 - ema_decay)`` updates).
        Each update follows a classifier fitted to finite samples, and the
        average cancels much of the noise this puts into the flow (see
        docs/qflow.md for measurements). 0 keeps the last update.
    classifier_learning_rate_init : float, default=1e-3
        Adam learning rate of the classifiers in the first refinement round.
    classifier_warmup : int, default=300
        Classifier steps at the start of each phase.
    classifier_steps : int, default=4
        Classifier steps after each flow update.
    tol : float, default=1e-4
        With ``early_stopping``: improvement of the held-out score below
        which a validation counts as no improvement.
    n_iter_no_change : int, default=10
        With ``early_stopping``: validations without improvement after which
        a stage stops (the initialisation validates every 50 steps, the
        refinement after every phase).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of both samples, and use it twice.
        The OT-CFM initialisation scores its flow there (minus its
        flow-matching loss) before training and every 50 steps, stops when
        the score stalls, and keeps the best-scoring flow (without it, it
        runs ``init_max_iter`` steps, the length of its cosine learning-rate
        schedule). The refinement scores the flow there (:meth:`score`, on
        up to 1000 rows of each sample) before it starts and after every
        phase, and keeps the best-scoring flow, which may be the initial
        one. The score on a few hundred rows is noisy: it catches gross
        failures of the refinement, not the slow drift of one run far longer
        than the default (docs/qflow.md).
    validation_fraction : float, default=0.1
        Share of rows held out when ``early_stopping`` is on.
    solver : {"rk4", "dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun"}, default="rk4"
        Solver for :meth:`transform` and :meth:`inverse_transform`: ``"rk4"``
        on the training grid, or one of torchdiffeq's adaptive methods.
        Training always uses RK4.
    warm_start : bool, default=False
        Refine the previous flow instead of starting over (no new
        initialisation); the data scaling of the first fit is kept.
    verbose : int, default=0
        Progress bars when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds network initialisation, minibatches and the target draws.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...

    Attributes
    ----------
    velocity_ : torch.nn.Module
        The fitted velocity network, on normalised coordinates.
    baseline_ : dict of ndarray or None
        When the baseline is on (``"gaussian"``, or ``"auto"`` from 32
        features on), the Gaussian OT map whose velocity is added to the
        network's, on normalised coordinates: ``mean_p`` and
        ``mean_q`` (``n_features``), ``eigenvectors`` (in columns) and
        ``eigenvalues`` of its matrix; None otherwise.
    center_ : ndarray of shape (n_features,)
        Common shift of the data.
    scale_ : float
        Common scale of the data.
    transport_cost_ : float
        Mean discretised path cost of the training rows of X, in the units
        of X (compare with :math:`W_2^2(P, Q)`; ``transport_cost(X,
        path=False)`` gives the map's cost, often the closer estimate).
    loss_curve_ : list of float
        Refinement loss averaged over every 50 flow updates (and over the
        last updates of each phase).
    history_ : dict of lists
        Per entry of ``loss_curve_``: ``"loss"``, ``"kl"`` (estimated KL),
        ``"transport"`` (transport cost, normalised units) and
        ``"direction"`` (``"P->Q"`` or ``"Q->P"``); ``"validation"`` is
        ``validation_scores_`` (empty without ``early_stopping``).
    validation_scores_ : list of float or None
        With ``early_stopping``: the held-out score (higher is better) before
        refinement and after each phase; None otherwise, or without
        refinement.
    best_validation_score_ : float or None
        The best of ``validation_scores_``: the kept flow's score.
    init_loss_curve_ : list of float
        Training loss of the initialisation (flow matching, or the
        distillation with ``init="otflow"``), averaged over every 50 steps.
    init_validation_scores_ : list of float or None
        With ``early_stopping`` and ``init="ot-cfm"``: minus the
        flow-matching loss on the held-out rows, before training and every
        50 steps; the best-scoring flow was kept.
    init_n_iter_ : int
        Steps of the initialisation.
    init_reflow_n_iter_ : int
        Steps of the reflow that straightened the initial flow (0 with
        ``init_reflow_max_iter=0``; fewer than its cap when early stopping
        stopped it).
    n_iter_ : int
        Refinement flow updates taken.
    normalizing_flow_ : bool
        Whether Q was N(0, I) (``fit`` without a target sample): the flow is
        then a normalising flow and :meth:`score_samples` gives log p(x).
    conditions_ : ndarray of shape (n_classes,) or None
        The sorted class labels of a conditional fit (``condition``), which
        :meth:`transform` and the other methods then take for their rows;
        None after an unconditional fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.

    See Also
    --------
    TelescopingRatioEstimator : log density ratios along a fitted Q-flow.

    References
    ----------
    C. Xu, X. Cheng and Y. Xie, "Computing high-dimensional optimal transport
    by flow neural networks", arXiv:2305.11857.

    Examples
    --------
    >>> from skot import QFlowTransport
    >>> from skot.datasets import make_gaussian_ot
    >>> X, Y, problem = make_gaussian_ot(400, 2, random_state=0)
    >>> qflow = QFlowTransport(init_max_iter=200, max_iter=5, classifier_warmup=20,
    ...                        random_state=0).fit(X, Y)
    >>> qflow.transform(X[:3]).shape
    (3, 2)
    >>> qflow.trajectory(X[:3]).shape  # rows, grid nodes, features
    (3, 5, 2)
    """

    _networks = ("velocity_",)

    _parameter_constraints: dict = {
        "gamma": [Interval(Real, 0, None, closed="left")],
        "n_intervals": [Interval(Integral, 1, None, closed="left")],
        "n_substeps": [Interval(Integral, 1, None, closed="left")],
        "n_substeps_eval": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list, StrOptions({"auto"})],
        "baseline": [StrOptions({"auto", "gaussian"}), None],
        "classifier_hidden_layer_sizes": [tuple, list],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "init": [StrOptions({"ot-cfm", "otflow"})],
        "init_params": [dict, None],
        "init_max_iter": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "init_batch_size": [Interval(Integral, 2, None, closed="left")],
        "init_ot_batch_size": [Interval(Integral, 2, None, closed="left"), None],
        "init_reflow_max_iter": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "init_learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "init_ema_decay": [Interval(Real, 0, 1, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "n_flips": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "classifier_learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "classifier_warmup": [Interval(Integral, 0, None, closed="left")],
        "classifier_steps": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "solver": [StrOptions(set(SOLVERS))],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        gamma=0.002,
        *,
        n_intervals=4,
        n_substeps=1,
        n_substeps_eval=3,
        hidden_layer_sizes="auto",
        baseline="auto",
        classifier_hidden_layer_sizes=(128, 128, 128),
        activation="silu",
        init="ot-cfm",
        init_params=None,
        init_max_iter="auto",
        init_batch_size=256,
        init_ot_batch_size=None,
        init_reflow_max_iter="auto",
        init_learning_rate_init=5e-3,
        init_ema_decay=0.999,
        sigma=0.0,
        n_flips=2,
        max_iter=100,
        batch_size=512,
        learning_rate_init=2e-5,
        ema_decay=0.995,
        classifier_learning_rate_init=1e-3,
        classifier_warmup=300,
        classifier_steps=4,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        solver="rk4",
        warm_start=False,
        verbose=0,
        random_state=None,
        device="auto",
    ):
        self.gamma = gamma
        self.n_intervals = n_intervals
        self.n_substeps = n_substeps
        self.n_substeps_eval = n_substeps_eval
        self.hidden_layer_sizes = hidden_layer_sizes
        self.baseline = baseline
        self.classifier_hidden_layer_sizes = classifier_hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.init_params = init_params
        self.init_max_iter = init_max_iter
        self.init_batch_size = init_batch_size
        self.init_ot_batch_size = init_ot_batch_size
        self.init_reflow_max_iter = init_reflow_max_iter
        self.init_learning_rate_init = init_learning_rate_init
        self.init_ema_decay = init_ema_decay
        self.sigma = sigma
        self.n_flips = n_flips
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.ema_decay = ema_decay
        self.classifier_learning_rate_init = classifier_learning_rate_init
        self.classifier_warmup = classifier_warmup
        self.classifier_steps = classifier_steps
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.solver = solver
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fit

    # Domain adaptation in Pipelines: ``sample_domain`` is routed to fit and
    # transform (and so to fit_transform) without a set_*_request call, as in
    # skada.
    __metadata_request__fit = {"sample_domain": True}
    __metadata_request__transform = {"sample_domain": True}

    @_fit_context(prefer_skip_nested_validation=True)
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
        """Fit the flow from the rows of X (a sample of P) to those of y (of Q).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Sample of the source distribution P; with ``sample_domain``, the
            stacked rows of both domains.
        y : array-like of shape (n_target_samples, n_features) or None
            Sample of the target distribution Q (written ``Y`` in the docs);
            its number of rows may differ from X's. None, or a 1-D array of
            labels (as a Pipeline passes), takes Q = N(0, I): the flow is then
            a normalising flow. The name is scikit-learn's, which passes it by
            keyword.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain adaptation (skada's convention): rows of X with a
            non-negative domain are the source sample P, rows with a negative
            one the target sample Q, and ``y`` (labels, -1 on target rows) is
            ignored. The fitted estimator is then an adapter:
            :meth:`transform` maps source rows onto the target domain and
            passes target rows through, and rows given without
            ``sample_domain`` are taken as target rows. See
            :func:`skot.da.make_da_pipeline`.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row of X counts (with ``sample_domain``, the rows
            of both domains): the flow transports the weighted empirical
            distributions. Minibatches draw rows in proportion to their
            weights, so a row of integer weight k counts as k copies of it
            (the OT-Flow fits of ``init="otflow"`` weigh their losses
            instead, docs/training.md); rows of zero weight are dropped.
            None weighs rows equally.
        target_sample_weight : array-like of shape (n_target_samples,), default=None
            The same for the rows of ``y``; not with ``sample_domain``
            (``sample_weight`` then weighs both domains) nor without ``y``.
        condition : array-like of shape (n_samples,), default=None
            Class labels of the rows of X (any sortable labels: integers,
            strings) for a conditional transport: the mass of each class of
            P goes to the same class of Q, by one network that reads the
            class (docs/qflow.md, "Conditional transport"). With
            ``sample_domain``, the labels of the rows of both domains.
            :meth:`transform` and the other methods then take the labels of
            their rows. Every class needs rows in both samples.
        target_condition : array-like of shape (n_target_samples,), default=None
            The class labels of the rows of ``y``; with ``condition``, and
            not with ``sample_domain``.

        Returns
        -------
        self : QFlowTransport
        """
        # Nested parameters are checked before any work, whatever ``init``.
        otflow = self._otflow_init_config()
        samples = self._validate_fit_samples(
            X, y, sample_domain, sample_weight, target_sample_weight, condition, target_condition
        )
        X, Y, warm, dev, rng, gen, wx, wy, normalizing, conditions = samples
        weights = (wx, wy)
        if conditions is not None and self.init == "otflow" and not warm:
            raise ValueError(
                "A conditional transport starts from OT-CFM: init='otflow' has no "
                "class-conditional form. Use init='ot-cfm'."
            )
        if self.baseline == "gaussian" and self.init == "otflow" and not warm:
            raise ValueError(
                "baseline='gaussian' adds the Gaussian OT map's velocity to an OT-CFM "
                "initialisation; init='otflow' trains its flow through N(0, I) instead. "
                "Use init='ot-cfm' or baseline=None."
            )
        classes, (codes_x, codes_y) = self._fit_conditions(conditions, warm)
        k = 0 if classes is None else len(classes)

        center, scale = (self.center_, self.scale_) if warm else self._normalisation(X, Y, wx, wy)
        Xn = to_tensor((X - center) / scale, dev)
        Yn = to_tensor((Y - center) / scale, dev)
        if k:
            # Each row carries its class as one-hot columns that the flow
            # reads and never moves (skot._conditions).
            Xn, Yn = with_one_hot(Xn, codes_x, k), with_one_hot(Yn, codes_y, k)

        validation = None
        if self.early_stopping:
            # One held-out split serves both stages: the initialisation's
            # flow-matching loss and the refinement's transport score.
            X_val, Xn, train_wx = split_weighted_rows(Xn, wx, self.validation_fraction, rng)
            Y_val, Yn, train_wy = split_weighted_rows(Yn, wy, self.validation_fraction, rng)
            validation, weights = (X_val, Y_val), (train_wx, train_wy)

        init_record = reflow_record = None
        d = X.shape[1]
        if warm:
            velocity = copy.deepcopy(module_to(self.velocity_, dev))
            # A warm start keeps the first fit's baseline, which the
            # network has learnt to correct.
            baseline = self._fitted_baseline()
            field = self._with_baseline(velocity, baseline)
        else:
            activation, sizes = self.activation, self._velocity_widths(d)
            if k:
                velocity = build_module(lambda: ConditionedField(d, k, sizes, activation), dev, gen)
            else:
                velocity = build_module(lambda: TimeMLP(d, d, sizes, activation), dev, gen)
            baseline = None
            if self._baseline_on(d):
                # The training rows' Gaussians, without the class columns.
                baseline = fit_gaussian_ot((Xn[:, :d], weights[0]), (Yn[:, :d], weights[1]))
            field = self._with_baseline(velocity, baseline)
            n_rows = min(len(Xn), len(Yn))  # the "auto" step counts' measure
            if self.init == "otflow":
                init_record = self._initialise_through_gaussian(
                    velocity, Xn, Yn, otflow, rng, gen, weights
                )
            else:
                config = self._flow_matching_config(k, n_rows=n_rows)
                init_record = train_ot_cfm(field, Xn, Yn, config, gen, validation, weights)
            reflow_steps = self._reflow_steps(n_rows=n_rows)
            if reflow_steps:
                reflow_record = self._straighten(
                    field, Xn, Yn, k, gen, validation, weights, reflow_steps
                )

        validate = None
        if validation is not None:

            def validate():
                return self._validation_score(field, *validation)

        record = refine(field, Xn, Yn, self._refinement_config(k), gen, validate, weights)

        # Only now is fitted state written: a failure above leaves the
        # estimator as it was (unfitted, or its previous fit with warm_start).
        self.velocity_ = velocity.eval()
        self.baseline_ = baseline
        self.center_ = np.asarray(center, dtype=np.float64)
        self.scale_ = float(scale)
        scores = record.validation_scores or None
        self.history_ = {**record.history, "direction": record.labels, "validation": scores or []}
        self.loss_curve_ = record.loss_curve
        self.n_iter_ = record.n_iter
        self.validation_scores_ = scores
        self.best_validation_score_ = max(scores) if scores else None
        if init_record is not None:
            self.init_loss_curve_ = init_record.loss_curve
            self.init_validation_scores_ = init_record.validation_scores
            self.init_n_iter_ = init_record.n_iter
            self.init_reflow_n_iter_ = reflow_record.n_iter if reflow_record else 0
        self.adapts_domains_ = sample_domain is not None
        self.normalizing_flow_ = normalizing
        self.conditions_ = classes
        # On the validated array: the public method would warn that X has
        # no feature names when the fit was given a DataFrame.
        self.transport_cost_ = float(np.average(self._transport_cost(X, dev, codes_x), weights=wx))
        return self

    def fit_transform(
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
        """Fit, then transform the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_target_samples, n_features) or None
            As in :meth:`fit`.
        sample_domain : array-like of shape (n_samples,), default=None
            As in :meth:`fit`: source rows are mapped onto the target domain
            and target rows are returned unchanged.
        sample_weight, target_sample_weight, condition, target_condition
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        fitted = self.fit(
            X,
            y,
            sample_domain=sample_domain,
            sample_weight=sample_weight,
            target_sample_weight=target_sample_weight,
            condition=condition,
            target_condition=target_condition,
        )
        return fitted.transform(X, sample_domain=sample_domain, condition=condition)

    @staticmethod
    def _normalisation(X, Y, weights_x=None, weights_y=None):
        # One shift and one scalar for both samples: OT for the squared cost
        # is equivariant under them (per-feature scaling would not be).
        (mean_x, var_x), (mean_y, var_y) = (
            weighted_mean_var(X, weights_x),
            weighted_mean_var(Y, weights_y),
        )
        center = 0.5 * (mean_x + mean_y)
        scale = float(np.sqrt(0.5 * (var_x.sum() + var_y.sum()) / X.shape[1]))
        return center, scale if scale > 0 else 1.0

    @staticmethod
    def _with_baseline(velocity, baseline):
        """The flow's field: ``velocity``, plus the Gaussian OT map's when
        ``baseline`` holds one."""
        return velocity if baseline is None else GaussianOTVelocity(velocity, baseline)

    def _baseline_on(self, n_features: int) -> bool:
        """Whether a fresh fit adds the Gaussian baseline, ``"auto"`` resolved
        for ``n_features`` (the class columns not counted)."""
        if self.baseline != "auto":
            return self.baseline is not None
        # From 32 features on the network, widened with it, fits the
        # non-affine rest better than it fits the whole map; below, the
        # Gaussians' map of non-Gaussian data is a worse start than none
        # (docs/qflow.md, "The Gaussian baseline velocity").
        return self.init == "ot-cfm" and n_features >= _AUTO_BASELINE_FEATURES

    def _fitted_baseline(self) -> dict | None:
        # getattr: an estimator pickled before the baseline has none.
        return getattr(self, "baseline_", None)

    def _field(self, dev):
        """The fitted flow's field on ``dev``."""
        return self._with_baseline(module_to(self.velocity_, dev), self._fitted_baseline())

    def _velocity_widths(self, n_features: int) -> tuple[int, ...]:
        """``hidden_layer_sizes``, with ``"auto"`` resolved for ``n_features``."""
        if self.hidden_layer_sizes != "auto":
            return tuple(self.hidden_layer_sizes)
        width = full_rank_width(n_features)
        # Only from 32 features: baseline="gaussian" below keeps the width
        # that was measured there.
        if n_features >= _AUTO_BASELINE_FEATURES and self._baseline_on(n_features):
            width = max(width, _BASELINE_MIN_WIDTH)
        return (width,) * _AUTO_DEPTH

    def _init_steps(self, n_rows=None) -> int:
        """``init_max_iter``, with ``"auto"`` resolved for ``n_rows`` rows
        (its lower bound for ``init="otflow"``, whose fits it also sets)."""
        if self.init_max_iter != "auto":
            return self.init_max_iter
        if n_rows is None or self.init == "otflow":
            return _AUTO_INIT_STEPS[0]
        steps = math.ceil(_AUTO_INIT_PASSES * n_rows / self.init_batch_size)
        return min(max(steps, _AUTO_INIT_STEPS[0]), _AUTO_INIT_STEPS[1])

    def _reflow_steps(self, n_rows=None) -> int:
        """``init_reflow_max_iter``, with ``"auto"`` resolved: a share of the
        initialisation's steps for ``n_rows`` rows."""
        if self.init_reflow_max_iter != "auto":
            return self.init_reflow_max_iter
        return math.ceil(_AUTO_REFLOW_SHARE * self._init_steps(n_rows))

    def _flow_matching_config(self, n_conditions: int = 0, n_rows=None) -> FlowMatchingConfig:
        return FlowMatchingConfig(
            n_conditions=n_conditions,
            max_iter=self._init_steps(n_rows),
            batch_size=self.init_batch_size,
            pairing_size=self.init_ot_batch_size,
            learning_rate_init=self.init_learning_rate_init,
            sigma=self.sigma,
            ema_decay=self.init_ema_decay,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )

    def _straighten(self, field, Xn, Yn, n_conditions, gen, validation, weights, steps):
        """One round of reflow on the initial flow's own coupling (skot._reflow):
        the training rows, and the held-out ones for its score, paired with
        their images as ``transform`` integrates them."""

        def pairs(X, Y):
            return straight_line_pairs(field, X, Y, self.n_intervals, self.n_substeps_eval)

        config = dataclasses.replace(self._flow_matching_config(n_conditions), max_iter=steps)
        held_out = None if validation is None else pairs(*validation)
        return train_reflow(field, pairs(Xn, Yn), config, gen, held_out, weights)

    def _refinement_config(self, n_conditions: int = 0) -> RefinementConfig:
        return RefinementConfig(
            n_conditions=n_conditions,
            gamma=self.gamma,
            n_intervals=self.n_intervals,
            n_substeps=self.n_substeps,
            n_flips=self.n_flips,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init,
            ema_decay=self.ema_decay,
            classifier_hidden_layer_sizes=tuple(self.classifier_hidden_layer_sizes),
            classifier_learning_rate_init=self.classifier_learning_rate_init,
            classifier_warmup=self.classifier_warmup,
            classifier_steps=self.classifier_steps,
            activation=self.activation,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )

    def _otflow_init_config(self):
        """The training settings of the two OT-Flow fits of ``init="otflow"``,
        validated as OTFlowDensity's own parameters."""
        params = {"max_iter": self._init_steps(), **(self.init_params or {})}
        return otflow_config(params, verbose=self.verbose, caller="QFlowTransport's init_params")

    def _initialise_through_gaussian(self, velocity, Xn, Yn, config, rng, gen, weights):
        """The paper's other initial flow: P -> N(0, I) on [0, 1/2], then
        N(0, I) -> Q on [1/2, 1], from two OT-Flow fits, distilled into
        ``velocity`` by regression on the joined flow's velocities."""
        # Both CNFs are fitted on the commonly normalised data (not
        # standardised per feature), so their latent spaces coincide and the
        # joined path is continuous at t = 1/2.
        to_gaussian = [
            fit_potential(Z, config, rng, gen, weights=w)[0].eval()
            for Z, w in zip((Xn, Yn), weights)
        ]
        for potential in to_gaussian:
            potential.requires_grad_(False)
        # The regression needs trajectories, not every row: cap their number.
        rows = rng.permutation(len(Xn))[:_DISTIL_ROWS]
        return distil_joined_flow(
            velocity,
            to_gaussian,
            Xn[torch.as_tensor(rows, device=Xn.device)],
            self._flow_matching_config(),
            gen,
            n_steps=config.n_steps_eval,
            weights=None if weights[0] is None else weights[0][rows],
        )

    def _validation_score(self, velocity, X_val, Y_val):
        """Transport score of the current flow on the held-out rows."""
        X_val, Y_val = X_val[:_SCORED_ROWS], Y_val[:_SCORED_ROWS]
        nodes = time_grid(self.n_intervals, device=X_val.device)
        with torch.no_grad():
            mapped = integrate_in_batches(
                velocity, X_val, nodes, self.n_substeps_eval, self._inference_rows
            )
        return transport_score(*(to_numpy(v, np.float64) for v in (X_val, mapped, Y_val)))

    @property
    def _inference_rows(self) -> int:
        return inference_rows(self.batch_size)

    # ------------------------------------------------------------ transform

    def _flow(self, X, dev, backward=False, times=None, all_states=False, codes=None):
        """The flow from the (validated) rows of X, of classes ``codes`` for a
        conditional flow: its end points, or with ``all_states`` its
        positions at every node."""
        nodes = time_grid(self.n_intervals, device=dev) if times is None else times.to(dev)
        if backward:
            nodes = nodes.flip(0)
        method = "rk4" if all_states else self.solver

        d = X.shape[1]
        field = self._field(dev)

        def flow(x):
            states = integrate(field, x, nodes, self.n_substeps_eval, method=method)
            # Without the class columns of a conditional flow.
            return torch.stack(states, 1)[..., :d] if all_states else states[-1][:, :d]

        Xn = (X - self.center_) / self.scale_
        if codes is not None:
            Xn = with_one_hot(Xn, codes, len(self.conditions_))
        out = predict_in_batches(flow, Xn, self._inference_rows, dev)
        return (out * self.scale_ + self.center_).astype(X.dtype, copy=False)

    def transform(self, X, sample_domain=None, condition=None):
        """Push rows of X through the flow from time 0 to 1 (P towards Q).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, for a conditional flow (required
            then, and refused otherwise); each one of the fit's classes.
        sample_domain : array-like of shape (n_samples,), default=None
            When given, only source rows (non-negative domain) are pushed;
            target rows are returned unchanged. When None, every row is
            pushed, unless the estimator was fitted with ``sample_domain``:
            rows are then target rows, already in the domain that the source
            is brought into, and come back unchanged (so a Pipeline's
            ``predict`` on new target rows needs no extra argument).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            ``T(X)``, in X's float dtype.
        """
        X, dev = self._validate_predict_data(X)
        if sample_domain is None and self.adapts_domains_:
            return X.copy()
        codes = self._prediction_codes(condition, len(X))
        if sample_domain is None:
            return self._flow(X, dev, codes=codes)
        source = domain_array(sample_domain, len(X)) >= 0
        out = X.copy()
        if source.any():
            out[source] = self._flow(X[source], dev, codes=None if codes is None else codes[source])
        return out

    def inverse_transform(self, X, condition=None):
        """Pull rows back through the flow from time 1 to 0 (Q towards P).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, for a conditional flow.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        X, dev = self._validate_predict_data(X)
        return self._flow(X, dev, backward=True, codes=self._prediction_codes(condition, len(X)))

    def trajectory(self, X, times=None, *, inverse=False, condition=None):
        """Positions of rows of X along the flow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points at time 0 (from P); at time 1 (from Q) when ``inverse``.
        times : array-like of shape (n_times,), default=None
            Increasing times in [0, 1] starting at 0; the training grid when
            None. Each interval between them takes ``n_substeps_eval`` RK4
            steps.
        inverse : bool, default=False
            Carry X backwards from time 1 by the inverse flow. Positions are
            still listed at increasing times, so the last one is X itself
            (``times`` must then end at 1).
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, for a conditional flow.

        Returns
        -------
        ndarray of shape (n_samples, n_times, n_features)
        """
        if times is not None:
            times = np.asarray(times, dtype=np.float64)
            if times.ndim != 1 or times[0] != 0 or np.any(np.diff(times) <= 0) or times[-1] > 1:
                raise ValueError(
                    "times must be a strictly increasing 1-D array in [0, 1] starting at 0."
                )
            if inverse and times[-1] != 1:
                raise ValueError("With inverse=True, times must end at 1.")
            times = torch.as_tensor(times, dtype=torch.float32)
        X, dev = self._validate_predict_data(X)
        codes = self._prediction_codes(condition, len(X))
        path = self._flow(X, dev, times=times, all_states=True, backward=inverse, codes=codes)
        return np.ascontiguousarray(path[:, ::-1]) if inverse else path

    def transport_cost(self, X, condition=None, *, path=True):
        r"""Transport cost of each row of X: along the flow's path, or of its map.

        With ``path=True``, the discretised cost of the path,
        :math:`\sum_k \|x(t_k) - x(t_{k-1})\|^2 / h_k` on the training grid,
        the term the refinement penalises. With ``path=False``, the cost of
        the map that :meth:`transform` applies, :math:`\|T(x) - x\|^2`. Both
        are in the units of X, and their means estimate :math:`W_2^2(P, Q)`
        for an optimal flow, whose paths are straight. The path cost is at
        least the map's, by the Cauchy-Schwarz inequality, and adds the
        paths' bends, which do not move the end points. The map's cost is
        the closer estimate where paths bend. The default fit straightens its
        paths (``init_reflow_max_iter``), so the two agree: on Gaussian pairs
        of 2^14 rows (``benchmarks/results/qflow_transport.md``) the path
        cost is 0.994, 0.995 and 0.997 times the exact :math:`W_2^2` at d=64,
        128 and 256, the map's 0.993, 0.993 and 0.997; without the reflow the
        path cost was 1.117, 1.110 and 1.092 times it. On non-Gaussian pairs
        with a known map the map's cost was 0.937-1.025 times the exact map's
        on the same rows, over nine pairs in d=2 to 8, and below 0.983 on
        eight (``benchmarks/results/known_map_paired.md`` and docs/qflow.md,
        "Why the map's cost falls short": the fitted flow under-disperses).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        condition : array-like of shape (n_samples,), default=None
            The class label of each row, for a conditional flow.
        path : bool, default=True
            The path's discretised cost; False: the map's end-point cost.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X, dev = self._validate_predict_data(X)
        codes = self._prediction_codes(condition, len(X))
        if not path:
            mapped = self._flow(X, dev, codes=codes).astype(np.float64)
            return np.square(mapped - X).sum(1)
        return self._transport_cost(X, dev, codes)

    def _transport_cost(self, X, dev, codes=None):
        """The path cost of :meth:`transport_cost`, of rows already validated."""
        path = self._flow(X, dev, all_states=True, codes=codes).astype(np.float64)
        h = np.diff(np.linspace(0.0, 1.0, self.n_intervals + 1))
        return (np.square(np.diff(path, axis=1)).sum(2) / h).sum(1)

    @available_if(_is_normalizing_flow)
    def score_samples(self, X):
        r"""Log-density of P at each row of X, for a flow fitted to N(0, I).

        By the change of variables along the flow,
        :math:`\log p(x) = \log N(T(x); 0, I) + \int_0^1 \nabla \cdot
        v(x_t, t)\, dt`, integrated with the path (RK4, ``n_substeps_eval``
        steps per interval of the training grid). The divergence is exact
        (one backward pass per feature) up to 32 features; beyond, it is
        Hutchinson's unbiased estimate averaged over 16 Rademacher probes
        per row, drawn with a fixed seed so that the result is
        deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            In nats, in X's float dtype.

        Raises
        ------
        AttributeError
            When the flow was fitted to a target sample (``fit(X, Y)`` or
            ``sample_domain``): Q's density is then unknown, and so is P's.
            The method is then absent, as ``hasattr`` says.
        """
        X, dev = self._validate_predict_data(X)
        d = X.shape[1]
        grid = time_grid(self.n_intervals, device=dev)
        exact = d <= EXACT_DIVERGENCE_MAX_FEATURES
        gen = None if exact else torch.Generator(device=dev).manual_seed(0)
        field = self._field(dev)

        def log_density(x):
            z, log_det = end_and_log_det(field, x, grid, self.n_substeps_eval, exact=exact, gen=gen)
            # The flow runs on normalised coordinates; N(0, I) is in X's
            # units, and the scalings cancel in the Jacobian.
            return standard_normal_log_density(z * self.scale_ + center) + log_det

        center = torch.as_tensor(self.center_, dtype=torch.float32, device=dev)
        Xn = (X - self.center_) / self.scale_
        out = predict_in_batches(log_density, Xn, self._inference_rows, dev)
        return check_finite(out, "score_samples").astype(X.dtype, copy=False)

    def score(self, X, y=None, condition=None, target_condition=None):
        """Held-out transport criterion, higher is better.

        Minus the sum of the map's Monge gap on X and the squared W2 distance
        between ``T(X)`` and Y, relative to Y's total variance (see
        :func:`skot.metrics.transport_score`). It does not depend on
        ``gamma``, and only an optimal map from P onto Q makes both terms
        vanish, so ``GridSearchCV`` can select ``gamma`` with it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out sample of P. Its rows are pushed through the flow, also
            after a fit with ``sample_domain`` (where :meth:`transform`
            takes rows given alone as target rows).
        y : array-like of shape (n_target_samples, n_features) or None
            Held-out sample of Q; a draw from N(0, I) when None or 1-D.
            Cost is cubic in the number of rows (exact assignments).
        condition, target_condition : array-like, default=None
            For a conditional flow, the class labels of the rows of X and of
            y: the score is then the average of the classes' scores,
            weighted by their shares of the rows of X.

        Returns
        -------
        float
        """
        X, dev = self._validate_predict_data(X)
        Y = score_target_sample(y, X, self)
        codes = self._prediction_codes(condition, len(X))
        if codes is None:
            return transport_score(X, self._flow(X, dev), Y)
        target_codes = self._prediction_codes(target_condition, len(Y), "target_condition")
        mapped = self._flow(X, dev, codes=codes)
        scores, shares = [], []
        for c in np.unique(codes):
            rows, target_rows = codes == c, target_codes == c
            if target_rows.sum() < 2 or rows.sum() < 2:
                label = self.conditions_[c].tolist()
                raise ValueError(f"score needs at least 2 rows of class {label!r} in X and y.")
            scores.append(transport_score(X[rows], mapped[rows], Y[target_rows]))
            shares.append(rows.mean())
        return float(np.average(scores, weights=shares))

    # ------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
