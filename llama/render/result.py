"""A read-only view of a significance JSON (SCIENCE.md section 8), read defensively.

The significance files are written by llama.significance and read by other software, and their
optional keys come and go between versions: every key here may be missing, and a missing value
renders as "n/a" (:data:`NA`) rather than failing.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from llama.errors import InputError

#: How a value the result does not hold is shown.
NA = "n/a"
#: 90% containment radius of a 2-D Gaussian in units of its sigma (SCIENCE.md section 8).
R90_PER_SIGMA = math.sqrt(-2.0 * math.log(0.1))
#: Neutrinos whose p-value is below this are listed in the GCN notice (SCIENCE.md section 8).
NOTICE_P_LIMIT = 0.1


def number(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing, null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, spec: str = ".3g") -> str:
    """``value`` formatted with ``spec``, or :data:`NA` when it is not a finite number."""
    x = number(value)
    return NA if x is None else format(x, spec)


@dataclass(frozen=True)
class Neutrino:
    """One neutrino of a result; angles in degrees, dt in seconds (track minus GW)."""

    i3event: str
    dt: float | None
    ra: float
    dec: float
    sigma: float
    energy: float | None  # GeV
    odds_ratio: float | None
    p_value: float | None
    type: str | None

    @property
    def r90(self) -> float:
        """90% containment radius, deg (2.146 sigma)."""
        return R90_PER_SIGMA * self.sigma


@dataclass(frozen=True)
class Result:
    """What the renderers need from one significance JSON (``raw`` keeps all of it)."""

    raw: dict[str, Any] = field(repr=False)
    eventid: str
    event_time_iso: str | None
    event_time_mjd: float | None
    search: str | None
    odds_ratio: float | None
    p_value: float | None
    n_background: int | None
    far: float | None  # joint FAR, Hz
    p_value_note: str | None  # e.g. that p is the population's resolution limit 1/(N+1)
    population_key: str | None
    burst: bool
    distance_mpc: float | None
    neutrinos: tuple[Neutrino, ...]
    #: {"flux_sensitivity": [lo, hi] GeV cm^-2, "sensitive_energy_range": [lo, hi] GeV}
    flux_sensitivity_range: dict[str, tuple[float, float]] | None = None
    #: False for a partial result (computed from an incomplete neutrino list); None: not said
    neutrino_list_complete: bool | None = None

    @property
    def partial(self) -> bool:
        """True when the result says it was computed from an incomplete neutrino list."""
        return self.neutrino_list_complete is False

    @property
    def event_specific_p_value(self) -> float | None:
        """The event-specific p-value, when the search computed one (key ``p_value_event``;
        llama.significance writes none yet, so it shows as n/a)."""
        return number(self.raw.get("p_value_event"))


def _neutrinos(data: dict[str, Any]) -> tuple[Neutrino, ...]:
    """Per-neutrino rows: single_neutrino joined with inputs.neutrino_info by position."""
    info = (data.get("inputs") or {}).get("neutrino_info") or []
    single = data.get("single_neutrino") or []
    rows = []
    for i in range(max(len(info), len(single))):
        nu = info[i] if i < len(info) else {}
        one = single[i] if i < len(single) else {}
        ra, dec, sigma = (number(one.get(k, nu.get(k))) for k in ("ra", "dec", "sigma"))
        if ra is None or dec is None or sigma is None:
            raise InputError(f"neutrino {i} has no finite ra, dec and sigma")
        i3event = one.get("i3event") or f"{nu.get('run')}_{nu.get('event')}"
        rows.append(
            Neutrino(
                i3event=str(i3event),
                dt=number(one.get("dt")),
                ra=ra,
                dec=dec,
                sigma=sigma,
                energy=number(nu.get("energy")),
                odds_ratio=number(one.get("odds_ratio")),
                p_value=number(one.get("p_value")),
                type=nu.get("type"),
            )
        )
    return tuple(rows)


def _flux_sensitivity_range(value: Any) -> dict[str, tuple[float, float]] | None:
    """``neutrino_flux_sensitivity_range`` when both of its ranges are two finite numbers,
    lo <= hi, else None."""
    if not isinstance(value, dict):
        return None
    ranges = {}
    for key in ("flux_sensitivity", "sensitive_energy_range"):
        pair = value.get(key)
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        lo, hi = number(pair[0]), number(pair[1])
        if lo is None or hi is None or lo > hi:
            return None
        ranges[key] = (lo, hi)
    return ranges


def result_from_dict(data: dict[str, Any], eventid: str | None = None) -> Result:
    """A :class:`Result` from a parsed significance JSON; ``eventid`` when the file has none."""
    if not isinstance(data, dict):
        raise InputError("a significance result must be a JSON object")
    inputs = data.get("inputs") or {}
    info = inputs.get("gw_skymap_info") or {}
    params = inputs.get("search_parameters") or {}
    n_background = data.get("n_background")
    complete = data.get("neutrino_list_complete")
    return Result(
        raw=data,
        eventid=str(eventid or info.get("graceid") or info.get("object") or "unknown event"),
        event_time_iso=info.get("event_time_iso") or info.get("event_time"),
        event_time_mjd=number(info.get("event_time_mjd")),
        search=params.get("search"),
        odds_ratio=number(data.get("odds_ratio")),
        p_value=number(data.get("p_value")),
        n_background=n_background if isinstance(n_background, int) else None,
        far=number(data.get("far")),
        p_value_note=data.get("p_value_note") if isinstance(data.get("p_value_note"), str) else None,
        population_key=params.get("population_key"),
        burst=bool(info.get("burst")),
        distance_mpc=number(info.get("distance_mpc")),
        neutrinos=_neutrinos(data),
        flux_sensitivity_range=_flux_sensitivity_range(data.get("neutrino_flux_sensitivity_range")),
        neutrino_list_complete=complete if isinstance(complete, bool) else None,
    )


def read_result(path: str | os.PathLike, eventid: str | None = None) -> Result:
    """Read a significance JSON file into a :class:`Result` (InputError naming the file)."""
    try:
        data = json.loads(open(path, "rb").read())
        return result_from_dict(data, eventid)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    except (ValueError, InputError) as err:
        raise InputError(f"{path}: not a significance result ({err})") from None
