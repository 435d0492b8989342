"""Donor weights on the simplex for synthetic control: the classic fit, its identified set, and penalised weights.

Notation (one fit): ``A`` = donors' pre-period outcomes, shape (n_pre, J); ``b`` = the treated unit's pre-period
outcomes; ``V = diag(v)`` (``v = 1`` unless given); the simplex is ``{w >= 0, sum(w) = 1}``; ``Y0_post`` (n_post, J)
and ``y1_post`` are the post-period outcomes; the gap in post period ``t`` is ``y1_post_t - Y0_post_t @ w``.

Classic synthetic control (Abadie, Diamond and Hainmueller 2010): ``w`` minimises ``||b - A w||_V^2``, solved by
:func:`simplex_least_squares`.

Identified set (issue 13). The loss is strictly convex in the fitted values ``A w``, so every optimal ``w`` gives
the same fitted values ``f* = A w*``; the optimal weights are exactly the polytope ``W* = {w in simplex : A w = f*}``
(with an exact fit, ``f* = b``). With few pre periods and many donors ``W*`` is rarely a point: then the gaps, and
the ATT, depend on which optimal ``w`` a solver returns. The range of each post-period gap and of their mean over
``W*`` is two linear programmes each (``scipy.optimize.linprog``, HiGHS). The equalities are imposed on data
scaled so that the largest |V-weighted pre-period outcome| is 1, with HiGHS's primal feasibility tolerance
:data:`IDENTIFIED_SET_TOLERANCE` (1e-9); a range narrower than :data:`UNIQUE_TOLERANCE` (1e-6) times the largest
|outcome| counts as a point ("identified"). Identified gaps do not need unique weights (weights can differ along
directions the post-period outcomes do not see); the weight ranges are reported separately.

Penalised synthetic control (Abadie and L'Hour 2021, JASA 116(536), 1817-1834, eq. 5): ``w`` minimises
``||b - A w||_V^2 + lambda * sum_j w_j ||b - a_j||_V^2`` over the simplex (``a_j`` = donor ``j``'s pre-period
path). For ``lambda > 0`` the solution is unique and sparse for data in general quadratic position (their
Theorem 1). Penalty rules:

* ``"min"`` (the default): the limit ``lambda -> 0+``. Because the penalty is linear in ``w``, the penalised
  solutions converge, as ``lambda`` falls to 0, to the minimiser of ``sum_j w_j ||b - a_j||_V^2`` over ``W*``:
  the best pre-period fit is kept and, among the weight vectors achieving it, the one with the least
  interpolation bias (weight on donors close to the treated unit) is chosen. One linear programme; where ``W*`` is
  a point it returns the classic weights exactly, so the rule changes nothing where the classic fit is unique.
  ``tests/test_models_synth_identified.py`` checks the limit against the quadratic programme at small ``lambda``.
* a number ``lambda > 0``: the quadratic programme itself (SLSQP with the analytic gradient, then polished on its
  support by the exact KKT system and checked against the KKT conditions; the same programme as
  ``pysyncon.PenalizedSynth``, which it is tested against).

Why by hand: no installed library computes identified sets of synthetic-control weights; ``pysyncon`` solves the
penalised programme by plain SLSQP from the uniform start (no optimality check, no polish), and has no ``lambda ->
0+`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: HiGHS primal/dual feasibility tolerance of the identified-set programmes (data scaled to max |pre outcome| = 1).
IDENTIFIED_SET_TOLERANCE = 1e-9
#: A gap whose range over the optimal weights is at most this share of the largest |outcome| is identified.
UNIQUE_TOLERANCE = 1e-6
#: The penalty rules :func:`fit_weights` accepts besides a positive number.
PENALTY_RULES = ("min",)
#: Weight-selection methods: classic everywhere, penalised everywhere, or penalised where the classic gaps are not
#: identified (``auto``).
METHODS = ("auto", "classic", "penalized")


def simplex_least_squares(donors_pre: np.ndarray, treated_pre: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
    """Weights ``w`` on the simplex minimising ``sum_t v_t (treated_pre_t - (donors_pre @ w)_t)^2``.

    ``donors_pre`` has shape (n_periods, n_donors). The sum-to-one constraint is imposed first as a heavily
    weighted extra row of a non-negative least-squares problem (Lawson-Hanson, ``scipy.optimize.nnls``); the
    solution is then polished on its support by solving the equality-constrained KKT system
    ``[G_SS 1; 1' 0][w_S; mu] = [c_S; 1]`` exactly (``G = A'A``, ``c = A'b``). If the result fails the KKT
    optimality check, SLSQP with the analytic gradient finishes the job from there. Deterministic.
    When the weights are not unique (fewer pre periods than donors in the support) the fit still is.
    """
    from scipy import optimize  # here, not at module level: only synthetic-control fits need it
    A = np.asarray(donors_pre, dtype=float)
    b = np.asarray(treated_pre, dtype=float)
    if v is not None:
        root_v = np.sqrt(np.asarray(v, dtype=float))
        A, b = A * root_v[:, None], b * root_v
    n = A.shape[1]
    # Rescale so tolerances mean the same thing for outcomes in yuan or in index points.
    scale = max(float(np.abs(A).max()), float(np.abs(b).max()), 1e-300)
    A, b = A / scale, b / scale
    G, c = A.T @ A, A.T @ b
    penalty = 1e3 * max(1.0, float(np.sqrt(A.shape[0])))
    w, _ = optimize.nnls(np.vstack([A, np.full(n, penalty)]), np.append(b, penalty), maxiter=100 * n)
    w = _polish_on_support(G, c, w / w.sum())
    if not _is_simplex_optimum(G, c, w):
        w = _polish_on_support(G, c, _slsqp_simplex_qp(G, c, w))
    return w


def _slsqp_simplex_qp(G: np.ndarray, c: np.ndarray, start: np.ndarray) -> np.ndarray:
    """SLSQP with the analytic gradient for ``min 0.5 w'Gw - c'w`` on the simplex from ``start``; the result clipped
    at 0 and renormalised to sum to one (callers polish it on its support)."""
    from scipy import optimize

    result = optimize.minimize(
        lambda x: 0.5 * x @ G @ x - c @ x, start, jac=lambda x: G @ x - c, method="SLSQP",
        bounds=[(0.0, 1.0)] * len(c),
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    w = np.clip(result.x, 0.0, None)
    return w / w.sum()


def _polish_on_support(G: np.ndarray, c: np.ndarray, w: np.ndarray, threshold: float = 1e-9) -> np.ndarray:
    """Exact optimum on the support of ``w`` (KKT system), kept only if feasible and no worse than ``w``.

    The support is ``w > threshold * max(w)``."""
    support = w > threshold * w.max()
    k = int(support.sum())
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = G[np.ix_(support, support)]
    kkt[:k, k] = kkt[k, :k] = 1.0
    if np.linalg.cond(kkt) > 1e12:
        return w  # singular: the weights on this support are not unique; any optimum will do
    solution = np.linalg.solve(kkt, np.append(c[support], 1.0))
    if (solution[:k] < 0).any():
        return w
    polished = np.zeros_like(w)
    polished[support] = solution[:k]
    objective = lambda x: 0.5 * x @ G @ x - c @ x  # noqa: E731
    return polished if objective(polished) <= objective(w) + 1e-15 else w


def _is_simplex_optimum(G: np.ndarray, c: np.ndarray, w: np.ndarray, tol: float = 1e-7) -> bool:
    """KKT check: the gradient is equal on the support and no smaller off it (up to ``tol`` x its scale)."""
    gradient = G @ w - c
    support = w > 1e-9 * w.max()
    level = gradient[support].mean()
    slack = tol * max(1.0, float(np.abs(G).max()), float(np.abs(c).max()))
    on = np.abs(gradient[support] - level).max() <= slack
    off = (~support).sum() == 0 or (gradient[~support] - level).min() >= -slack
    return bool(on and off and abs(w.sum() - 1) < 1e-12 and (w >= 0).all())


# ----------------------------------------------------------------------------------------------------------------
# The scaled problem and linear programmes over sets of optimal weights
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scaled:
    """``A``, ``b`` weighted by sqrt(v) and divided by ``scale`` (max |entry|); ``d_j = ||b - a_j||^2`` (scaled)."""

    A: np.ndarray
    b: np.ndarray
    d: np.ndarray
    scale: float


def _scaled(donors_pre: np.ndarray, treated_pre: np.ndarray, v: np.ndarray | None) -> _Scaled:
    A = np.asarray(donors_pre, dtype=float)
    b = np.asarray(treated_pre, dtype=float)
    if v is not None:
        root_v = np.sqrt(np.asarray(v, dtype=float))
        A, b = A * root_v[:, None], b * root_v
    scale = max(float(np.abs(A).max()), float(np.abs(b).max()), 1e-300)
    A, b = A / scale, b / scale
    return _Scaled(A=A, b=b, d=((b[:, None] - A) ** 2).sum(axis=0), scale=scale)


def _linprog(objective: np.ndarray, A_eq: np.ndarray, b_eq: np.ndarray) -> np.ndarray:
    """argmin ``objective @ w`` over ``{w >= 0 : A_eq w = b_eq}`` by HiGHS (deterministic); raises if it fails."""
    from scipy.optimize import linprog

    result = linprog(objective, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs",
                     options={"primal_feasibility_tolerance": IDENTIFIED_SET_TOLERANCE,
                              "dual_feasibility_tolerance": IDENTIFIED_SET_TOLERANCE})
    if result.status != 0:
        raise RuntimeError(f"linear programme over the optimal synthetic-control weights failed: {result.message}")
    return np.clip(result.x, 0.0, None)


def _ranges(objectives: np.ndarray, A_eq: np.ndarray, b_eq: np.ndarray) -> np.ndarray:
    """[min, max] of each row of ``objectives`` @ w over ``{w >= 0 : A_eq w = b_eq}``; shape (n_rows, 2)."""
    out = np.empty((len(objectives), 2))
    for i, row in enumerate(objectives):
        size = max(float(np.abs(row).max()), 1e-300)  # scale the objective so HiGHS's tolerances are relative
        out[i, 0] = row @ _linprog(row / size, A_eq, b_eq)
        out[i, 1] = row @ _linprog(-row / size, A_eq, b_eq)
    return out


def _optimal_set(problem: _Scaled, w: np.ndarray, with_penalty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Equalities ``(A_eq, b_eq)`` of the weights as good as ``w``: same fitted values (and, ``with_penalty``, the
    same penalty ``d'w``), summing to 1."""
    rows = [problem.A, np.ones((1, len(w)))]
    rhs = [problem.A @ w, [1.0]]
    if with_penalty:
        size = max(float(problem.d.max()), 1e-300)
        rows.append(problem.d[None, :] / size)
        rhs.append([problem.d @ w / size])
    return np.vstack(rows), np.concatenate(rhs)


def _unique_certificate(problem: _Scaled, w: np.ndarray, strict: float = 1e-6) -> bool:
    """True if ``w`` is provably the only optimal classic weight vector (no linear programme needed).

    All optimal weights share the fitted values, hence the gradient ``g = A'(A w - b)``, hence (complementary
    slackness) a weight can be positive only where ``g`` is at its minimum. If ``g`` exceeds that minimum by more
    than ``strict`` off the support ``S`` of ``w`` (strict complementarity) and ``[A_S; 1']`` has full column rank,
    every optimal weight vector lives on ``S`` and solves the same full-rank system: it is ``w``. An exact fit has
    ``g = 0`` everywhere and never passes; the linear programmes decide then.
    """
    support = w > 1e-9 * w.max()
    gradient = problem.A.T @ (problem.A @ w - problem.b)
    level = gradient[support].mean()
    if (~support).any() and (gradient[~support] - level).min() <= strict:
        return False
    system = np.vstack([problem.A[:, support], np.ones((1, int(support.sum())))])
    return bool(np.linalg.matrix_rank(system) == int(support.sum()) and np.linalg.cond(system) < 1e8)


def gap_ranges(A_eq: np.ndarray, b_eq: np.ndarray, donors_post: np.ndarray, treated_post: np.ndarray) -> np.ndarray:
    """[low, high] of each post-period gap and (last row) of their mean over ``{w >= 0 : A_eq w = b_eq}``."""
    Y0 = np.asarray(donors_post, dtype=float)
    objectives = np.vstack([Y0, Y0.mean(axis=0, keepdims=True)])
    treated = np.append(np.asarray(treated_post, dtype=float), np.mean(treated_post))
    synthetic = _ranges(objectives, A_eq, b_eq)
    return np.column_stack([treated - synthetic[:, 1], treated - synthetic[:, 0]])


# ----------------------------------------------------------------------------------------------------------------
# Penalised weights
# ----------------------------------------------------------------------------------------------------------------


def penalized_limit_weights(donors_pre: np.ndarray, treated_pre: np.ndarray, v: np.ndarray | None = None,
                            classic: np.ndarray | None = None) -> np.ndarray:
    """Penalised synthetic-control weights in the limit ``lambda -> 0+``: among the weights with the classic
    optimal fit, the one minimising ``sum_j w_j ||b - a_j||_V^2`` (one linear programme; see the module docstring).

    ``classic``: classic weights already computed (else :func:`simplex_least_squares` is run). The LP vertex is
    polished by solving ``[A_S; 1'] w_S = [f*; 1]`` exactly on its support when that system has full column rank.
    """
    problem = _scaled(donors_pre, treated_pre, v)
    w_classic = simplex_least_squares(donors_pre, treated_pre, v) if classic is None else np.asarray(classic)
    A_eq, b_eq = _optimal_set(problem, w_classic)
    w = _linprog(problem.d / max(float(problem.d.max()), 1e-300), A_eq, b_eq)
    support = w > 1e-10 * w.max()
    system = A_eq[:, support]
    if np.linalg.matrix_rank(system) == int(support.sum()):
        solution, *_ = np.linalg.lstsq(system, b_eq, rcond=None)
        if (solution >= 0).all() and np.abs(system @ solution - b_eq).max() <= IDENTIFIED_SET_TOLERANCE:
            w = np.zeros_like(w)
            w[support] = solution
    return w / w.sum()


def penalized_weights(donors_pre: np.ndarray, treated_pre: np.ndarray, penalty: float,
                      v: np.ndarray | None = None) -> np.ndarray:
    """Penalised synthetic-control weights (Abadie and L'Hour 2021, eq. 5) for a fixed ``penalty`` = lambda > 0.

    Minimises ``0.5 w'Gw - c'w`` with ``G = A'A``, ``c = A'b - (lambda / 2) d`` on the simplex (the objective of
    eq. 5 halved, data scaled): SLSQP with the analytic gradient from the uniform start (then from the best donor),
    polished on its support by the exact KKT system, and accepted only if it passes the KKT check.
    """
    if not penalty > 0:
        raise ValueError(f"penalty lambda must be > 0 (use penalized_limit_weights for lambda -> 0+), got {penalty}")
    problem = _scaled(donors_pre, treated_pre, v)
    G = problem.A.T @ problem.A
    c = problem.A.T @ problem.b - 0.5 * penalty * problem.d
    n = G.shape[0]
    nearest = np.zeros(n)
    nearest[int(np.argmin(problem.d))] = 1.0
    for start in (np.full(n, 1.0 / n), nearest):
        w = _slsqp_simplex_qp(G, c, start)
        for threshold in (1e-9, 1e-6, 1e-4):  # SLSQP leaves zeros at ~1e-10; find the true support
            polished = _polish_on_support(G, c, w, threshold)
            if _is_simplex_optimum(G, c, polished):
                return polished
    raise RuntimeError(f"penalised synthetic control (lambda = {penalty:g}): no weights pass the KKT check")


# ----------------------------------------------------------------------------------------------------------------
# One fit: classic weights, their identified set, and the reported weights
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightFit:
    """The weights of one synthetic control and what is known about their uniqueness.

    ``gap_ranges``: (n_post + 1, 2) [low, high] of each post-period gap and (last row) of their mean over the
    classic optimal weights ``W*``. ``fit_unique``: every such range is a point (within :data:`UNIQUE_TOLERANCE`).
    ``synth_method`` 'classic' or 'penalized'; ``penalty_lambda`` the lambda used (0.0 for classic and for the
    ``lambda -> 0+`` rule; ``penalty_rule`` 'none', 'min' or 'fixed'). ``weights_unique`` (only with ``detail``,
    else None): the reported estimator's gaps are the same for all of its own optimal weights. ``weight_ranges``
    (only when asked, else None): (J, 2), the range of each donor's weight over ``W*``.
    """

    weights: np.ndarray
    classic_weights: np.ndarray
    synth_method: str
    penalty_lambda: float
    penalty_rule: str
    gap_ranges: np.ndarray
    fit_unique: bool
    weights_unique: bool | None = None
    weight_ranges: np.ndarray | None = None


def check_method(method: str, penalty) -> None:
    """Raise ValueError for a method outside :data:`METHODS` or a penalty that is neither a rule nor > 0."""
    if method not in METHODS:
        raise ValueError(f"synth option method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(penalty, str):
        if penalty not in PENALTY_RULES:
            raise ValueError(f"synth option penalty must be {' or '.join(PENALTY_RULES)} or a number > 0, "
                             f"got {penalty!r}")
    elif isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
        raise ValueError(f"synth option penalty must be {' or '.join(PENALTY_RULES)} or a number > 0, got {penalty!r}")


def fit_weights(donors_pre: np.ndarray, treated_pre: np.ndarray, donors_post: np.ndarray, treated_post: np.ndarray,
                v: np.ndarray | None = None, method: str = "auto", penalty="min", detail: bool = False,
                weight_ranges: bool = False) -> WeightFit:
    """Classic weights, the range of every post-period gap over all optimal classic weights, and the weights used.

    ``donors_pre`` (n_pre, J), ``donors_post`` (n_post, J). ``method``: ``classic`` reports the classic weights
    (the solver's choice when they are not unique); ``penalized`` always the penalised ones; ``auto`` the classic
    ones where every post-period gap is identified and the penalised ones elsewhere. ``penalty``: ``"min"``
    (``lambda -> 0+``) or a number > 0. ``detail``: also check the reported weights' own uniqueness;
    ``weight_ranges``: also the range of each donor's weight over ``W*`` (2 J linear programmes unless the classic
    weights are provably unique). See the module docstring.
    """
    check_method(method, penalty)
    scale = max(float(np.abs(donors_pre).max()), float(np.abs(treated_pre).max()),
                float(np.abs(donors_post).max()), float(np.abs(treated_post).max()), 1e-300)
    problem = _scaled(donors_pre, treated_pre, v)
    classic = simplex_least_squares(donors_pre, treated_pre, v)
    A_eq, b_eq = _optimal_set(problem, classic)
    point = _unique_certificate(problem, classic)
    if point:  # no linear programmes needed: the optimal weights are a single point
        gaps = np.asarray(treated_post, dtype=float) - np.asarray(donors_post, dtype=float) @ classic
        ranges = np.repeat(np.append(gaps, gaps.mean())[:, None], 2, axis=1)
    else:
        ranges = gap_ranges(A_eq, b_eq, donors_post, treated_post)
    fit_unique = bool((ranges[:, 1] - ranges[:, 0]).max() <= UNIQUE_TOLERANCE * scale)
    use_penalized = method == "penalized" or (method == "auto" and not fit_unique)
    if not use_penalized:
        weights, name, lam, rule = classic, "classic", 0.0, "none"
    elif penalty == "min":
        weights, name, lam, rule = penalized_limit_weights(donors_pre, treated_pre, v, classic), "penalized", 0.0, "min"
    else:
        weights = penalized_weights(donors_pre, treated_pre, float(penalty), v)
        name, lam, rule = "penalized", float(penalty), "fixed"
    weights_unique = ranges_of_weights = None
    if detail:
        if name == "classic":
            weights_unique = fit_unique
        else:
            own_eq, own_b = _optimal_set(problem, weights, with_penalty=True)
            own = gap_ranges(own_eq, own_b, donors_post, treated_post)
            weights_unique = bool((own[:, 1] - own[:, 0]).max() <= UNIQUE_TOLERANCE * scale)
    if weight_ranges:
        ranges_of_weights = (np.column_stack([classic, classic]) if point
                             else _ranges(np.eye(len(classic)), A_eq, b_eq))
    return WeightFit(weights=weights, classic_weights=classic, synth_method=name, penalty_lambda=lam,
                     penalty_rule=rule, gap_ranges=ranges, fit_unique=fit_unique, weights_unique=weights_unique,
                     weight_ranges=ranges_of_weights)
