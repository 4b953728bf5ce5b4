"""p-values against background populations (SCIENCE.md section 6).

Pure numpy; ``populations.hdf5`` is read and written by llama.io.populations. It holds
ascending float arrays of background odds at
``<search>/<population>/<sensitivity>/<instruments sorted and joined>``,
e.g. ``subthreshold/bns/o3/H1L1V1``.  p = (1 + #(O_bg >= O)) / (1 + N_bg), never 0
(defect 8 of section 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from llama.errors import InputError

INJECTIONS = "injections"
"""Top-level group of signal-injection populations: never a search name, so injections and
background never share a key and no p-value (keyed by its search) is computed against them."""


def population_key(search: str, population: str, sensitivity: str, instruments: str | list[str] | tuple[str, ...]) -> str:
    """HDF5 path of a background population, instruments sorted and joined (H1L1V1)."""
    if isinstance(instruments, str):
        instruments = [i for i in instruments.replace(",", " ").split() if i]
    joined = "".join(sorted(str(i).strip() for i in instruments))
    for part in (search, population, sensitivity, joined):
        if not part or "/" in part:
            raise InputError(f"invalid population key component {part!r}")
    if search == INJECTIONS:
        raise InputError(f"{INJECTIONS!r} is the group of signal injections, not a search")
    return f"{search}/{population}/{sensitivity}/{joined}"


def injection_key(background_key: str, signal_mean: float) -> str:
    """Key of the signal injections (mean ``signal_mean`` neutrinos) beside a background
    population: ``injections/<background key>/mu<signal_mean>``."""
    if not signal_mean > 0:
        raise InputError(f"signal mean must be > 0 for injections, got {signal_mean}")
    return f"{INJECTIONS}/{background_key}/mu{signal_mean:g}"


def p_value(odds: float, background: np.ndarray) -> float:
    """(1 + #(background >= odds)) / (1 + N); ``background`` ascending."""
    return float(p_values(odds, background))


def p_values(odds: ArrayLike, background: np.ndarray) -> np.ndarray:
    """:func:`p_value` of every element of ``odds`` at once (one searchsorted)."""
    n_at_least = background.size - np.searchsorted(background, odds, side="left")
    return (1 + n_at_least) / (1 + background.size)


@dataclass
class PValue:
    """A p-value with its provenance; ``value`` is None when the population is missing."""

    value: float | None
    n_background: int
    key: str
    source: str | None

    def of(self, odds: float) -> float | None:
        """p-value of another odds value against the same population (None when missing)."""
        return None if self._background is None else p_value(odds, self._background)

    _background: np.ndarray | None = None
