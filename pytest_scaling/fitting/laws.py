"""Scaling-law functional forms, evaluated in log space for many parameter vectors at once.

Every law is fitted on ``log L`` with an internal parameter vector ``theta`` (log-scale
coefficients, raw exponents) and reports friendly parameters (``E``, ``A``, ``alpha``, ...).
``log_predict(theta, X)`` takes ``theta`` of shape ``[S, k]`` (S parameter vectors: starts or
bootstrap replicas) and returns ``log L`` of shape ``[S, P]`` and its Jacobian (one ``[S, P]``
array per parameter), so the fitter can optimise thousands of starts in one numpy pass. Laws of the form
``log L = LSE_t(theta_off - theta_slope * log x_col)`` (Chinchilla, the power law) declare their
``terms``; the solver then forms the normal equations with BLAS products instead of the Jacobian.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod

import numpy as np


def lse_terms(theta: np.ndarray, X: np.ndarray, terms) -> tuple[np.ndarray, list[np.ndarray]]:
    """log-sum-exp over ``terms`` of (theta[off] - theta[slope] * X[:, col]); returns [S, P] and softmax weights.

    Written for few passes over the [S, P] arrays (the fit's inner loop): a term without a slope stays an
    [S, 1] column until its weight is formed, and the weights are built in place.
    """
    dtype = np.result_type(theta.dtype, X.dtype)
    us = []
    for off, slope, col in terms:
        u = theta[:, off, None].astype(dtype)
        if slope is not None:
            offset, u = u, np.multiply(theta[:, slope, None].astype(dtype), -X[None, :, col])
            u += offset
        us.append(u)
    full = np.broadcast_shapes(*(u.shape for u in us), (len(theta), len(X)))
    top = np.broadcast_to(us[0], full).copy()
    for u in us[1:]:
        np.maximum(top, u, out=top)
    weights = []
    for u in us:
        z = np.subtract(u, top, out=u) if u.shape == full else u - top
        if dtype == np.float64:
            np.maximum(z, -700.0, out=z)  # exp() with a subnormal result is ~10x slower, and is ~0 anyway
        weights.append(np.exp(z, out=z))
    total = weights[0].copy()
    for w in weights[1:]:
        total += w
    inverse = np.reciprocal(total)
    for w in weights:
        w *= inverse
    np.log(total, out=total)
    total += top
    return total, weights


def _grid(**axes: list[float]) -> np.ndarray:
    return np.array(list(itertools.product(*axes.values())), dtype=float)


_STEP5 = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
_EXPONENTS = [0.0, 0.5, 1.0, 1.5, 2.0]
_OFFSETS = [-1.0, -0.5, 0.0, 0.5, 1.0]


class Law(ABC):
    """A functional form L(inputs; params)."""

    name: str
    inputs: tuple[str, ...]
    theta_names: tuple[str, ...]
    param_names: tuple[str, ...]

    @abstractmethod
    def log_predict(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``log L`` [S, P] and d log L / d theta_i, one [S, P] array per parameter, for theta [S, k]
        and X = log inputs [P, m]."""

    @abstractmethod
    def init_grid(self) -> np.ndarray:
        """The multi-start initialisations, [G, k]."""

    @abstractmethod
    def params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Friendly parameters from theta [..., k] (arrays broadcast over leading axes)."""

    @abstractmethod
    def theta(self, params: dict[str, float]) -> np.ndarray:
        """Inverse of :meth:`params` for one parameter set."""

    def valid(self, theta: np.ndarray) -> np.ndarray:
        """Mask of parameter vectors inside the law's domain."""
        return np.all(np.isfinite(theta), axis=-1)

    def predict(self, params: dict[str, float], **inputs) -> np.ndarray:
        """L at the given inputs (scalars or arrays, broadcast together)."""
        return self.predict_theta(self.theta(params), **inputs)

    def predict_theta(self, theta: np.ndarray, **inputs) -> np.ndarray:
        """:meth:`predict` from the internal parameters (exact even where E underflows to 0)."""
        missing = [name for name in self.inputs if name not in inputs]
        if missing:
            raise TypeError(f"{self.name} law needs inputs {self.inputs}; missing {missing}")
        arrays = np.broadcast_arrays(*(np.asarray(inputs[name], dtype=float) for name in self.inputs))
        X = np.log(np.stack([a.ravel() for a in arrays], axis=1))
        logp, _ = self.log_predict(np.asarray(theta, float)[None, :], X)
        out = np.exp(logp[0]).reshape(arrays[0].shape)
        return out if out.ndim else float(out)

    @property
    def formula(self) -> str:
        """The law's form in words, e.g. ``L(C) = E + A * C^-alpha``."""
        return self.form

    def text(self, params: dict[str, float]) -> str:
        """The law with fitted ``params``, on one line."""
        return f"{self.formula} with " + ", ".join(f"{k} = {params[k]:.4g}" for k in self.param_names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LSELaw(Law):
    """A law whose log is a log-sum-exp of linear terms: ``terms`` = ((off, slope|None, col|None), ...)."""

    terms: tuple[tuple[int, int | None, int | None], ...]

    def log_predict(self, theta, X):
        logp, weights = lse_terms(theta, X, self.terms)
        J = [None] * len(self.theta_names)
        for w, (off, slope, col) in zip(weights, self.terms, strict=False):
            J[off] = w
            if slope is not None:
                J[slope] = -w * X[:, col]
        return logp, J


class PowerLaw(LSELaw):
    """L(x) = E + A * x^-alpha, or Kaplan's pure L = (x_c / x)^alpha with ``offset=False`` (E = 0).

    theta = (a, alpha, e) with A = e^a, E = e^e (no ``e`` without offset). ``x`` is N, D or C.
    """

    def __init__(self, offset: bool = True, x: str = "x"):
        self.offset = offset
        self.name = "power"
        self.inputs = (x,)
        self.theta_names = ("a", "alpha", "e") if offset else ("a", "alpha")
        self.param_names = ("E", "A", "alpha") if offset else ("A", "alpha", "x_c")
        self.terms = ((0, 1, 0), (2, None, None)) if offset else ((0, 1, 0),)
        self.form = f"L({x}) = E + A * {x}^-alpha" if offset else f"L({x}) = ({x}_c / {x})^alpha"

    def text(self, params):
        x = self.inputs[0]
        if self.offset:
            return f"L({x}) = {params['E']:.4g} + {params['A']:.4g}·{x}^-{params['alpha']:.4f}"
        return f"L({x}) = ({params['x_c']:.4g} / {x})^{params['alpha']:.4f}"

    def init_grid(self):
        if self.offset:
            return _grid(a=_STEP5, alpha=_EXPONENTS, e=_OFFSETS)
        return _grid(a=_STEP5, alpha=_EXPONENTS)

    def valid(self, theta):
        return super().valid(theta) & (theta[..., 1] > -1.0)

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        a, alpha = theta[..., 0], theta[..., 1]
        if self.offset:
            return {"E": np.exp(theta[..., 2]), "A": np.exp(a), "alpha": alpha}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x_c = np.exp(a / alpha)
        return {"A": np.exp(a), "alpha": alpha, "x_c": x_c}

    def theta(self, params):
        head = [np.log(params["A"]), params["alpha"]]
        return np.array(head + [np.log(params["E"])] if self.offset else head, dtype=float)

    def __repr__(self):
        return f"PowerLaw(offset={self.offset}, x={self.inputs[0]!r})"


class ChinchillaLaw(LSELaw):
    """Hoffmann et al.: L(N, D) = E + A / N^alpha + B / D^beta.

    theta = (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e; fitted on
    log L = LSE(a - alpha log N, b - beta log D, e), as in Hoffmann et al. and Epoch AI.
    """

    name = "chinchilla"
    form = "L(N, D) = E + A / N^alpha + B / D^beta"
    inputs = ("N", "D")
    theta_names = ("a", "b", "e", "alpha", "beta")
    param_names = ("E", "A", "B", "alpha", "beta")
    terms = ((0, 3, 0), (1, 4, 1), (2, None, None))

    def init_grid(self):
        # Hoffmann et al.'s grid (4,500 starts), as used by Epoch AI's replication.
        return _grid(a=_STEP5, b=_STEP5, e=_OFFSETS, alpha=_EXPONENTS, beta=_EXPONENTS)

    def valid(self, theta):
        return super().valid(theta) & (theta[..., 3] > -1.0) & (theta[..., 4] > -1.0)

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {
            "E": np.exp(theta[..., 2]),
            "A": np.exp(theta[..., 0]),
            "B": np.exp(theta[..., 1]),
            "alpha": theta[..., 3],
            "beta": theta[..., 4],
        }

    def theta(self, params):
        return np.array(
            [np.log(params["A"]), np.log(params["B"]), np.log(params["E"]), params["alpha"], params["beta"]],
            dtype=float,
        )


class KaplanLaw(Law):
    """Kaplan et al.'s joint form: L(N, D) = ((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D.

    theta = (n_c, d_c, alpha_N, alpha_D) with N_c = e^n_c, D_c = e^d_c.
    """

    name = "kaplan"
    form = "L(N, D) = ((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D"
    inputs = ("N", "D")
    theta_names = ("n_c", "d_c", "alpha_N", "alpha_D")
    param_names = ("N_c", "D_c", "alpha_N", "alpha_D")

    def log_predict(self, theta, X):
        ln, ld = X[:, 0], X[:, 1]
        nc, dc, an, ad = (np.ascontiguousarray(theta[:, i])[:, None] for i in range(4))
        gap = nc - ln
        u1 = (an / ad) * gap
        s = np.logaddexp(u1, dc - ld)
        w1 = np.exp(u1 - s)
        w2 = 1.0 - w1
        return ad * s, [an * w1, ad * w2, w1 * gap, s - w1 * u1]

    def init_grid(self):
        return _grid(
            n_c=[10.0, 20.0, 30.0, 40.0],
            d_c=[10.0, 20.0, 30.0, 40.0],
            alpha_N=[0.05, 0.1, 0.2, 0.4, 0.8],
            alpha_D=[0.05, 0.1, 0.2, 0.4, 0.8],
        )

    def valid(self, theta):
        return super().valid(theta) & (theta[..., 3] > 1e-4) & (theta[..., 2] > 0)

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {
            "N_c": np.exp(theta[..., 0]),
            "D_c": np.exp(theta[..., 1]),
            "alpha_N": theta[..., 2],
            "alpha_D": theta[..., 3],
        }

    def theta(self, params):
        return np.array(
            [np.log(params["N_c"]), np.log(params["D_c"]), params["alpha_N"], params["alpha_D"]], dtype=float
        )


LAWS = {"chinchilla": ChinchillaLaw, "power": PowerLaw, "kaplan": KaplanLaw}


CURVE_LAW = PowerLaw(offset=True, x="C")  # the gate's curve: L(C) = E + A * C^-alpha in training FLOPs
