"""The LVK distance ansatz of a sky-map pixel (Singer et al. 2016), pure numpy/scipy.

p(r | pixel) = DISTNORM r^2 N(r; DISTMU, DISTSIGMA) for r > 0 (r in Mpc, DISTNORM in Mpc^-2).
Pixels where it is undefined (non-finite DISTMU or DISTSIGMA, as LVK writes for pixels
without a distance estimate) get NaN distances.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from llama.errors import InputError

_T_SPAN = 40.0  # ansatz integrals stop 40 sigma past the density's peak (phi ratio < 1e-347)
_BISECTIONS = 52  # inverse-CDF bisection steps: the bracket shrinks to float precision


def valid_ansatz(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """True where the ansatz is defined (finite DISTMU, finite positive DISTSIGMA)."""
    return np.isfinite(mu) & np.isfinite(sigma) & (sigma > 0)


def ansatz_integrals(
    mu: np.ndarray, sigma: np.ndarray, r: np.ndarray | float, kmax: int
) -> list[np.ndarray]:
    """Scaled [integral_0^r x**k N(x; mu, sigma) dx for k = 0..kmax]; r in Mpc, may be inf.

    With x = mu + sigma t, t runs from lo = -mu/sigma to hi = (r - mu)/sigma, and
    I_k = integral t**k phi(t) dt obeys I_k = (k-1) I_{k-2} - [t**(k-1) phi(t)]_lo^hi.
    Every value is multiplied by exp(max(lo, 0)**2 / 2): a per-(mu, sigma) factor that cancels
    in the ratios taken from these integrals and keeps pixels with DISTMU << 0 from underflowing.
    """
    lo = -mu / sigma
    top = np.maximum(lo, 0.0)  # where phi peaks on [lo, inf)
    hi = np.minimum((r - mu) / sigma, top + _T_SPAN)
    phi_lo, phi_hi = _scaled_phi(lo, top), _scaled_phi(hi, top)
    upper_tail = _mills(lo) * phi_lo - _mills(hi) * phi_hi  # exact where lo > 0
    t_moments = [
        np.where(lo > 0, upper_tail, special.ndtr(hi) - special.ndtr(lo)),
        phi_lo - phi_hi,
    ]
    for k in range(2, kmax + 1):
        edge = hi ** (k - 1) * phi_hi - lo ** (k - 1) * phi_lo
        t_moments.append((k - 1) * t_moments[k - 2] - edge)
    return [
        sum(math.comb(k, j) * mu ** (k - j) * sigma**j * t_moments[j] for j in range(k + 1))
        for k in range(kmax + 1)
    ]


def _scaled_phi(t: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Standard normal density at t times exp(top**2 / 2)."""
    return np.exp(0.5 * (top * top - t * t)) / math.sqrt(2 * math.pi)


def _mills(t: np.ndarray) -> np.ndarray:
    """Mills ratio (1 - Phi(t)) / phi(t)."""
    return math.sqrt(math.pi / 2) * special.erfcx(t / math.sqrt(2))


def ansatz_moments(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditional distance mean and standard deviation (Mpc) of the ansatz."""
    _, _, m2, m3, m4 = ansatz_integrals(mu, sigma, np.inf, 4)
    mean = m3 / m2
    return mean, np.sqrt(np.maximum(m4 / m2 - mean**2, 0.0))


def ansatz_parameters(distmean: float, diststd: float) -> tuple[float, float, float]:
    """Ansatz (DISTMU, DISTSIGMA, DISTNORM) whose conditional mean and std are the given (Mpc)."""

    def residual(params: np.ndarray) -> np.ndarray:
        mean, std = ansatz_moments(
            np.array([params[0] * distmean]), np.array([math.exp(params[1]) * diststd])
        )
        return np.array([mean[0] / distmean - 1, std[0] / diststd - 1])

    unreachable = InputError(
        f"distmean={distmean} Mpc, diststd={diststd} Mpc cannot be represented by the distance "
        "ansatz (it needs 0 < diststd < about 0.56 distmean)"
    )
    if not 0 < diststd < distmean:
        raise unreachable
    from scipy import optimize  # simulated maps only; keeps reading maps light

    solution = optimize.root(residual, np.array([1.0, 0.0]))
    if not (solution.success and np.max(np.abs(residual(solution.x))) < 1e-9):
        raise unreachable
    mu, sigma = float(solution.x[0] * distmean), math.exp(solution.x[1]) * diststd
    m2_scaled = ansatz_integrals(np.array([mu]), np.array([sigma]), np.inf, 2)[2][0]
    return mu, sigma, math.exp(0.5 * max(-mu / sigma, 0.0) ** 2) / float(m2_scaled)


def sample_ansatz(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """One distance (Mpc) per (mu, sigma) by bisection on the exact CDF; NaN where invalid."""
    u = rng.random(mu.size)
    distance = np.full(mu.size, np.nan)
    valid = valid_ansatz(mu, sigma)
    mu, sigma, u = mu[valid], sigma[valid], u[valid]
    target = u * ansatz_integrals(mu, sigma, np.inf, 2)[2]
    lo = np.zeros_like(mu)
    hi = np.maximum(mu, 0.0) + _T_SPAN * sigma  # the CDF is exactly 1 here
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = ansatz_integrals(mu, sigma, mid, 2)[2] < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    distance[valid] = 0.5 * (lo + hi)
    return distance
