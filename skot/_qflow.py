"""Q-flow: an invertible neural-ODE flow from P to Q with least W2 cost."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.optim.swa_utils import AveragedModel

from ._device import (
    PicklesNetworksOnCPU,
    batches,
    build_module,
    make_rngs,
    module_to,
    resolve_device,
    to_numpy,
    to_tensor,
)
from ._domains import domain_array, split_by_domain
from ._flow_matching import distil_joined_flow, train_ot_cfm
from ._nets import ACTIVATIONS, MLP, TimeMLP
from ._ode import integrate, time_grid
from ._otflow import OTFlowDensity
from ._ratio import RatioTrainer
from ._training import FiniteGuard, Monitor, progress
from ._validation import check_target_sample, standard_normal_target
from .metrics import transport_score

__all__ = ["QFlowTransport"]

_DISTIL_ROWS = 8192  # trajectories regressed on by the init="otflow" distillation
# Held-out rows of each sample scored after every refinement phase: the score
# solves two exact assignments, cubic in the rows.
_SCORED_ROWS = 1000


def _path_cost(states: list[torch.Tensor], grid: torch.Tensor) -> torch.Tensor:
    r"""Discretised transport cost per sample, ``sum_k ||x_k - x_{k-1}||^2 / h_k``."""
    cost = torch.zeros(states[0].shape[0], dtype=states[0].dtype, device=states[0].device)
    for k in range(1, len(states)):
        h = (grid[k] - grid[k - 1]).abs()
        cost = cost + (states[k] - states[k - 1]).square().sum(1) / h
    return cost


class QFlowTransport(PicklesNetworksOnCPU, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
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

    The flow is integrated with classical RK4, ``n_substeps`` steps on each of
    the ``n_intervals`` intervals of a uniform grid on :math:`[0, 1]`, and
    trained by differentiating through the solver.

    Data are centred and scaled by one common shift and one scalar before
    training (both samples alike); OT maps for the squared cost commute with
    such maps, so the fitted map and its costs are reported in the original
    units while ``gamma`` stays unit-free.

    Parameters
    ----------
    gamma : float, default=0.01
        Weight of the transport cost against the KL term. Larger values
        straighten and shorten paths but let the pushed distribution fall
        short of Q; select it with :meth:`score` and ``GridSearchCV``.
    n_intervals : int, default=4
        Intervals ``K`` of the time grid on which the transport cost is
        discretised and trajectories are reported.
    n_substeps : int, default=3
        RK4 steps per interval (the paper uses 3 to 5).
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        Widths of the velocity network, which sees ``x``, ``t`` and two
        Fourier features of ``t``.
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
    init_params : dict or None, default=None
        Parameters of the two :class:`OTFlowDensity` fits of
        ``init="otflow"``; their ``max_iter`` defaults to ``init_max_iter``.
    init_max_iter : int, default=2000
        Gradient steps of the initialisation (of each CNF and of the
        distillation with ``init="otflow"``).
    init_batch_size : int, default=256
        Minibatch of the initialisation; pairs within it are matched by exact
        OT, so larger batches give straighter initial flows at cubic cost.
    init_learning_rate : float, default=1e-3
        Adam learning rate of the initialisation.
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
    classifier_learning_rate : float, default=1e-3
        Adam learning rate of the classifiers.
    classifier_warmup : int, default=300
        Classifier steps at the start of each phase.
    classifier_steps : int, default=4
        Classifier steps after each flow update.
    tol : float, default=1e-4
        With ``early_stopping``: improvement of the validation flow-matching
        loss, checked every 50 steps, below which a check counts as no
        improvement.
    n_iter_no_change : int, default=10
        With ``early_stopping``: checks without improvement after which the
        initialisation stops.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of both samples, and use it twice.
        The initialisation monitors its flow-matching loss there and stops
        when it stalls (without it, it runs ``init_max_iter`` steps, the
        length of its cosine learning-rate schedule). The refinement scores
        the flow there (:meth:`score`, on up to 1000 rows of each sample)
        before it starts and after every phase, and keeps the best-scoring
        flow, which may be the initial one. The score on a few hundred rows
        is noisy: it catches gross failures of the refinement, not the slow
        drift of one run far longer than the default (docs/qflow.md).
    validation_fraction : float, default=0.1
        Share of rows held out when ``early_stopping`` is on.
    solver : str, default="rk4"
        Solver for :meth:`transform` and :meth:`inverse_transform`: ``"rk4"``
        on the training grid, or a torchdiffeq adaptive method such as
        ``"dopri5"``. Training always uses RK4.
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
        The fitted velocity field, on normalised coordinates.
    center_ : ndarray of shape (n_features,)
        Common shift of the data.
    scale_ : float
        Common scale of the data.
    transport_cost_ : float
        Mean discretised transport cost of the training rows of X, in the
        units of X (compare with :math:`W_2^2(P, Q)`).
    loss_curve_ : list of float
        Refinement loss after each flow update.
    history_ : dict of lists
        Per flow update: ``"kl"`` (estimated KL), ``"transport"`` (transport
        cost, normalised units) and ``"direction"`` (``"P->Q"`` or ``"Q->P"``).
        With ``early_stopping``, ``"validation"`` holds the held-out score
        before refinement and after each phase (empty otherwise).
    validation_scores_ : list of float or None
        ``history_["validation"]``; None without ``early_stopping``.
    best_validation_score_ : float or None
        The best of ``validation_scores_``: the kept flow's score.
    init_loss_curve_ : list of float
        Monitored flow-matching loss, every 50 steps.
    init_n_iter_ : int
        Flow-matching steps taken.
    n_iter_ : int
        Refinement flow updates taken.
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
        "hidden_layer_sizes": [tuple, list],
        "classifier_hidden_layer_sizes": [tuple, list],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "init": [StrOptions({"ot-cfm", "otflow"})],
        "init_params": [dict, None],
        "init_max_iter": [Interval(Integral, 0, None, closed="left")],
        "init_batch_size": [Interval(Integral, 2, None, closed="left")],
        "init_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "n_flips": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "classifier_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "classifier_warmup": [Interval(Integral, 0, None, closed="left")],
        "classifier_steps": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "solver": [str],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        gamma=0.01,
        *,
        n_intervals=4,
        n_substeps=3,
        hidden_layer_sizes=(128, 128, 128),
        classifier_hidden_layer_sizes=(128, 128, 128),
        activation="silu",
        init="ot-cfm",
        init_params=None,
        init_max_iter=2000,
        init_batch_size=256,
        init_learning_rate=1e-3,
        sigma=0.0,
        n_flips=2,
        max_iter=100,
        batch_size=512,
        learning_rate_init=2e-5,
        ema_decay=0.995,
        classifier_learning_rate=1e-3,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.classifier_hidden_layer_sizes = classifier_hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.init_params = init_params
        self.init_max_iter = init_max_iter
        self.init_batch_size = init_batch_size
        self.init_learning_rate = init_learning_rate
        self.sigma = sigma
        self.n_flips = n_flips
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.ema_decay = ema_decay
        self.classifier_learning_rate = classifier_learning_rate
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
    def fit(self, X, y=None, *, sample_domain=None):
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

        Returns
        -------
        self : QFlowTransport
        """
        warm = self.warm_start and hasattr(self, "velocity_")
        X = validate_data(
            self, X, reset=not warm, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        if sample_domain is not None:
            X, y = split_by_domain(X, y, sample_domain)
        Y = check_target_sample(y, X.shape[1], self)
        dev = resolve_device(self.device)
        rng, gen = make_rngs(self.random_state, dev)
        if Y is None:
            Y = standard_normal_target(rng, len(X), X.shape[1])

        if warm:
            center, scale = self.center_, self.scale_
        else:
            center, scale = self._normalisation(X, Y)
        Xn = to_tensor((X - center) / scale, dev)
        Yn = to_tensor((Y - center) / scale, dev)

        validation = None
        if self.early_stopping:
            # One held-out split serves both stages: the initialisation's
            # flow-matching loss and the refinement's transport score.
            X_val, Xn = _split(Xn, self.validation_fraction, rng)
            Y_val, Yn = _split(Yn, self.validation_fraction, rng)
            validation = (X_val, Y_val)

        if warm:
            velocity = copy.deepcopy(module_to(self.velocity_, dev))
            init_curve, init_steps = [], 0
        else:
            velocity = build_module(self._velocity_factory(X.shape[1]), dev, gen)
            if self.init == "otflow":
                init_curve, init_steps = self._initialise_through_gaussian(
                    velocity, Xn, Yn, rng, gen
                )
            else:
                init_curve, init_steps = self._initialise(velocity, Xn, Yn, gen, validation)

        history = self._refine(velocity, Xn, Yn, gen, validation)

        # Only now is fitted state written: a failure above leaves the
        # estimator as it was (unfitted, or its previous fit with warm_start).
        self.velocity_ = velocity.eval()
        self.center_ = np.asarray(center, dtype=np.float64)
        self.scale_ = float(scale)
        self.history_ = history
        self.loss_curve_ = history["loss"]
        self.n_iter_ = len(history["loss"])
        scores = history["validation"]
        self.validation_scores_ = scores if scores else None
        self.best_validation_score_ = max(scores) if scores else None
        if not warm:
            self.init_loss_curve_ = init_curve
            self.init_n_iter_ = init_steps
        self.adapts_domains_ = sample_domain is not None
        self.transport_cost_ = float(self.transport_cost(X).mean())
        return self

    def fit_transform(self, X, y=None, *, sample_domain=None):
        """Fit, then transform the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_target_samples, n_features) or None
            As in :meth:`fit`.
        sample_domain : array-like of shape (n_samples,), default=None
            As in :meth:`fit`: source rows are mapped onto the target domain
            and target rows are returned unchanged.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        return self.fit(X, y, sample_domain=sample_domain).transform(X, sample_domain=sample_domain)

    @staticmethod
    def _normalisation(X, Y):
        # One shift and one scalar for both samples: OT for the squared cost
        # is equivariant under them (per-feature scaling would not be).
        center = 0.5 * (X.mean(0) + Y.mean(0))
        scale = float(np.sqrt(0.5 * (X.var(0).sum() + Y.var(0).sum()) / X.shape[1]))
        return center, scale if scale > 0 else 1.0

    def _velocity_factory(self, d):
        sizes, activation = tuple(self.hidden_layer_sizes), self.activation
        return lambda: TimeMLP(d, d, sizes, activation)

    def _initialise(self, velocity, Xn, Yn, gen, validation):
        """OT-CFM training of ``velocity`` from Xn to Yn."""
        monitor = Monitor(self.tol, self.n_iter_no_change)
        X_val, Y_val = validation if validation is not None else (None, None)
        steps = train_ot_cfm(
            velocity,
            Xn,
            Yn,
            n_steps=self.init_max_iter,
            batch_size=self.init_batch_size,
            lr=self.init_learning_rate,
            sigma=self.sigma,
            gen=gen,
            monitor=monitor,
            X_val=X_val,
            Y_val=Y_val,
            verbose=self.verbose,
        )
        return monitor.history, steps

    def _initialise_through_gaussian(self, velocity, Xn, Yn, rng, gen):
        """The paper's other initial flow: P -> N(0, I) on [0, 1/2], then
        N(0, I) -> Q on [1/2, 1], from two OT-Flow fits, distilled into
        ``velocity`` by regression on the joined flow's velocities."""
        params = {"max_iter": self.init_max_iter, **(self.init_params or {})}
        density = OTFlowDensity(**params)
        # Both CNFs are fitted on the commonly normalised data (not
        # standardised per feature), so their latent spaces coincide and the
        # joined path is continuous at t = 1/2.
        to_gaussian = [density._fit_potential(Z, rng, gen)[0].eval() for Z in (Xn, Yn)]
        for potential in to_gaussian:
            potential.requires_grad_(False)
        # The regression needs trajectories, not every row: cap their number.
        rows = torch.as_tensor(rng.permutation(len(Xn))[:_DISTIL_ROWS], device=Xn.device)
        return distil_joined_flow(
            velocity,
            to_gaussian,
            Xn[rows],
            n_steps=density.n_steps_eval,
            n_iter=self.init_max_iter,
            batch_size=self.init_batch_size,
            lr=self.init_learning_rate,
            gen=gen,
            verbose=self.verbose,
        )

    def _validation_score(self, velocity, validation):
        """Transport score of the current flow on the held-out rows."""
        X_val, Y_val = (v[:_SCORED_ROWS] for v in validation)
        with torch.no_grad():
            mapped = self._push(velocity, X_val, time_grid(self.n_intervals, device=X_val.device))
        return transport_score(*(to_numpy(v, np.float64) for v in (X_val, mapped, Y_val)))

    def _refine(self, velocity, Xn, Yn, gen, validation=None):
        """Algorithm 1: alternate P->Q and Q->P phases of KL + gamma * cost.

        Each phase ends at the moving average of its updates
        (``ema_decay``). With ``validation``, the flow is scored on the
        held-out rows before refinement and after every phase, and the
        best-scoring flow is kept.
        """
        dev = Xn.device
        grid = time_grid(self.n_intervals, device=dev)
        d = Xn.shape[1]
        guard = FiniteGuard(velocity, hint="Try a smaller learning_rate_init or a larger gamma.")
        history = {"loss": [], "kl": [], "transport": [], "direction": [], "validation": []}
        batch = min(self.batch_size, len(Xn), len(Yn))
        best_state = None
        if validation is not None and self.n_flips > 0:
            history["validation"].append(self._validation_score(velocity, validation))
            best_state = copy.deepcopy(velocity.state_dict())

        def draw(pool):
            return pool[torch.randint(len(pool), (batch,), generator=gen, device=dev)]

        for flip in range(self.n_flips):
            lr_scale = 0.5**flip
            # Fresh classifiers every flip. A classifier kept across flips
            # goes on learning the same training rows, and the flow learns
            # its overfit: at d=10 on 4000 rows, 400 steps per phase drifted
            # to L2-UVP 3.54 with kept classifiers and reached 0.62 with
            # fresh ones (docs/qflow.md).
            classifiers = self._new_classifiers(d, dev, gen)
            for direction, source, target, nodes in (
                ("P->Q", Xn, Yn, grid),
                ("Q->P", Yn, Xn, grid.flip(0)),
            ):
                # A fresh optimiser per phase: Adam's moments of one direction's
                # objective would push the other phase the wrong way.
                optimizer = torch.optim.Adam(
                    velocity.parameters(), lr=self.learning_rate_init * lr_scale
                )
                clf = classifiers[direction]
                # Each phase ends at the moving average of its own updates.
                # (Not one average across phases: the two directions pull
                # the weights different ways, and their average is a worse,
                # shorter flow than either.)
                average = AveragedModel(velocity, avg_fn=_warm_ema(self.ema_decay))
                clf.set_lr(self.classifier_learning_rate * lr_scale)
                with torch.no_grad():
                    pushed = self._push(velocity, source, nodes)
                clf.fit(pushed, target, self.classifier_warmup, batch, gen)

                steps = progress(
                    range(self.max_iter), self.verbose, f"Q-flow {direction} {flip + 1}"
                )
                for _ in steps:
                    states = integrate(velocity, draw(source), nodes, self.n_substeps)
                    clf.net.requires_grad_(False)
                    kl = -clf(states[-1]).mean()
                    clf.net.requires_grad_(True)
                    cost = _path_cost(states, nodes).mean()
                    loss = kl + self.gamma * cost
                    guard.step(loss, f"Q-flow {direction}", optimizer)
                    average.update_parameters(velocity)
                    # Refresh the classifier on the points just pushed: the
                    # paper stresses that a stale r breaks training.
                    end = states[-1].detach()
                    for _ in range(self.classifier_steps):
                        clf.step(end, draw(target))
                    history["loss"].append(loss.item())
                    history["kl"].append(kl.item())
                    history["transport"].append(cost.item())
                    history["direction"].append(direction)
                velocity.load_state_dict(average.module.state_dict())
                if best_state is not None:
                    score = self._validation_score(velocity, validation)
                    if score > max(history["validation"]):
                        best_state = copy.deepcopy(velocity.state_dict())
                    history["validation"].append(score)
        if best_state is not None:
            # The refinement follows classifiers fitted to finite samples and
            # can drift from the optimal map; keep its best-scoring flow,
            # which may be the one it started from.
            velocity.load_state_dict(best_state)
        return history

    def _new_classifiers(self, d, device, gen):
        """One untrained log-ratio classifier per direction of the refinement."""

        def network():
            return MLP(d, 1, tuple(self.classifier_hidden_layer_sizes), self.activation)

        return {
            direction: RatioTrainer(
                build_module(network, device, gen), self.classifier_learning_rate
            )
            for direction in ("P->Q", "Q->P")
        }

    def _push(self, velocity, x, nodes):
        """End points of the flow from ``x`` along ``nodes``, in batches."""
        return torch.cat(
            [
                integrate(velocity, x[s], nodes, self.n_substeps)[-1]
                for s in batches(len(x), max(self.batch_size, 1024))
            ]
        )

    # ------------------------------------------------------------ transform

    def _checked(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dev = resolve_device(self.device)
        module_to(self.velocity_, dev)
        return X, dev

    def _flow(self, X, backward=False, times=None, all_states=False):
        X, dev = self._checked(X)
        nodes = time_grid(self.n_intervals, device=dev) if times is None else times.to(dev)
        if backward:
            nodes = nodes.flip(0)
        method = "rk4" if all_states else self.solver
        out = []
        with torch.no_grad():
            for s in batches(len(X), max(self.batch_size, 1024)):
                xb = to_tensor((X[s] - self.center_) / self.scale_, dev)
                states = integrate(self.velocity_, xb, nodes, self.n_substeps, method=method)
                out.append(torch.stack(states, 1) if all_states else states[-1])
        out = torch.cat(out).double() * self.scale_ + to_tensor(self.center_, dev, torch.float64)
        return to_numpy(out, X.dtype)

    def transform(self, X, sample_domain=None):
        """Push rows of X through the flow from time 0 to 1 (P towards Q).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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
        if sample_domain is None:
            if getattr(self, "adapts_domains_", False):
                return self._checked(X)[0].copy()
            return self._flow(X)
        X, _ = self._checked(X)
        source = domain_array(sample_domain, len(X)) >= 0
        out = X.copy()
        if source.any():
            out[source] = self._flow(X[source])
        return out

    def inverse_transform(self, X):
        """Pull rows back through the flow from time 1 to 0 (Q towards P).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        return self._flow(X, backward=True)

    def trajectory(self, X, times=None, *, inverse=False):
        """Positions of rows of X along the flow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points at time 0 (from P); at time 1 (from Q) when ``inverse``.
        times : array-like of shape (n_times,), default=None
            Increasing times in [0, 1] starting at 0; the training grid when
            None. Each interval between them takes ``n_substeps`` RK4 steps.
        inverse : bool, default=False
            Carry X backwards from time 1 by the inverse flow. Positions are
            still listed at increasing times, so the last one is X itself
            (``times`` must then end at 1).

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
        path = self._flow(X, times=times, all_states=True, backward=inverse)
        return np.ascontiguousarray(path[:, ::-1]) if inverse else path

    def transport_cost(self, X):
        r"""Discretised transport cost of each row of X along the flow.

        :math:`\sum_k \|x(t_k) - x(t_{k-1})\|^2 / h_k` on the training grid, in
        the units of X; its mean estimates :math:`W_2^2(P, Q)` for an optimal
        flow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        path = self.trajectory(X).astype(np.float64)
        h = np.diff(np.linspace(0.0, 1.0, self.n_intervals + 1))
        return (np.square(np.diff(path, axis=1)).sum(2) / h).sum(1)

    def score(self, X, y=None):
        """Held-out transport criterion, higher is better.

        Minus the sum of the map's Monge gap on X and the squared W2 distance
        between ``transform(X)`` and Y, relative to Y's total variance (see
        :func:`skot.metrics.transport_score`). It does not depend on
        ``gamma``, and only an optimal map from P onto Q makes both terms
        vanish, so ``GridSearchCV`` can select ``gamma`` with it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out sample of P.
        y : array-like of shape (n_target_samples, n_features) or None
            Held-out sample of Q; a draw from N(0, I) when None or 1-D.
            Cost is cubic in the number of rows (exact assignments).

        Returns
        -------
        float
        """
        X, _ = self._checked(X)
        Y = check_target_sample(y, X.shape[1], self)
        if Y is None:
            Y = np.random.RandomState(0).standard_normal(X.shape)
        return transport_score(X, self.transform(X), Y)

    # ------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags


def _warm_ema(decay: float):
    """``avg_fn`` of an exponential moving average with a warm-up.

    The n-th update gets weight ``max(1 - decay, 1 / (n + 1))``: a plain mean
    of the updates while there are fewer than ``1 / (1 - decay)`` of them, an
    exponential average after. Unlike a bare exponential average, a short
    refinement is then not held back towards its first update.
    """

    def update(averaged, current, n_averaged):
        weight = max(1.0 - decay, 1.0 / (float(n_averaged) + 1.0))
        return averaged.lerp(current, weight)

    return update


def _split(x: torch.Tensor, fraction: float, rng):
    n_val = max(1, round(fraction * len(x)))
    perm = torch.as_tensor(rng.permutation(len(x)), device=x.device)
    return x[perm[:n_val]], x[perm[n_val:]]
