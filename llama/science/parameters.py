"""Search parameters and the named presets (o3, o4) of SCIENCE.md section 2.

Units: times in s, rates in Hz, distances in Mpc, source-rate density in
Mpc^-3 s^-1, isotropic-equivalent energies in code units (kg Mpc^2 s^-2,
1 unit ~ 9.52e51 erg), detected neutrino energies in GeV, angles in degrees.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from llama.errors import ConfigurationError

#: One code unit of isotropic-equivalent energy, 1 kg Mpc^2 s^-2, in erg: 1e3 g x (1 Mpc in
#: cm)^2 with 1 pc = 648000/pi au and 1 au = 1.495978707e13 cm (IAU), = 9.5214e51 erg.
ERG_PER_ENERGY_UNIT = 1e3 * (648000.0 / math.pi * 1.495978707e13 * 1e6) ** 2


@dataclass(frozen=True)
class SearchParameters:
    """Every tunable number of the joint search; all are written into each output."""

    nu_51_100: float = 1.1
    """Expected detected neutrinos for 1e51 erg at 100 Mpc (before the zenith weight)."""
    ndotgwnu: float = 4.7565e-14
    """Joint GW+neutrino source rate density, Mpc^-3 s^-1 (1500 Gpc^-3 yr^-1, 365-day year)."""
    fb: float = 10.0
    """Neutrino beaming factor (OPA search only)."""
    k0: float = 400.8
    """Distance scale: r [Mpc] = k0 sqrt(E_gw) / rho."""
    tgwminus: float = -250.0
    tgwplus: float = 250.0
    tnuminus: float = -250.0
    tnuplus: float = 250.0
    ratebggw: float = 1.0 / 86400.0
    """GW background trigger rate, Hz."""
    ratebgnu: float = 6.4e-3
    """Neutrino background rate, Hz."""
    Egwmin: float = 1.87e-3
    Egwmax: float = 18.7
    Enumin: float = 1e-6
    Enumax: float = 0.1
    epsmin: float = 10.0
    """Lowest detectable neutrino energy, GeV."""
    epsmax: float = 1e9
    """Highest detectable neutrino energy, GeV."""
    rhomin: float = 5.59
    """GW network SNR threshold."""
    delta_omega: float = 2.5
    """Angular half-width of the background-density box, deg."""
    delta_E: float = 0.3
    """Fractional energy half-width of the background-density box."""
    window: float = 500.0
    """Half-width of the neutrino search window around the GW time, s."""

    @property
    def emission_window(self) -> float:
        """W_t = (tnuplus - tnuminus)(tgwplus - tgwminus), s^2."""
        return (self.tnuplus - self.tnuminus) * (self.tgwplus - self.tgwminus)

    @property
    def expected_background_neutrinos(self) -> float:
        """lambda = ratebgnu x 500 s: mean number of background neutrinos in the window."""
        return self.ratebgnu * self.window

    def r0(self, energy: float) -> float:
        """Largest distance (Mpc) at which GW energy ``energy`` reaches rhomin."""
        return self.k0 * math.sqrt(energy) / self.rhomin

    @property
    def horizon_volume(self) -> float:
        """V = 4/3 pi r0(Egwmax)^3, Mpc^3."""
        return 4.0 / 3.0 * math.pi * self.r0(self.Egwmax) ** 3

    def replace(self, **changes: float) -> SearchParameters:
        """A copy with some parameters changed (unknown names raise)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(f"unknown search parameter(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_output(self) -> dict[str, float]:
        """Every parameter under its ASCII name and, beside it, the original LLAMA O4 output
        spelling where that differs (SCIENCE.md section 8: ``εmin``, ``δω``, ``ΔE``, ...)."""
        ascii_names = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        original = {OUTPUT_NAMES[name]: ascii_names[name] for name in OUTPUT_NAMES}
        return {**ascii_names, **original}


#: ASCII field name -> key spelling of the original LLAMA O4 output files (Greek small
#: epsilon U+03B5, not the lunate U+03F5). Enumin, Enumax and rhomin are spelled as the fields.
OUTPUT_NAMES = {
    "epsmin": "εmin",
    "epsmax": "εmax",
    "delta_omega": "δω",
    "delta_E": "ΔE",
}

PRESETS: dict[str, SearchParameters] = {
    "o3": SearchParameters(),
    "o4": SearchParameters(
        k0=1190.0,
        Egwmin=18.7,
        Egwmax=1870.0,
        ndotgwnu=7.578640284119736e-16,
        delta_omega=18.0 / 7.0,
        delta_E=0.29162115354365997,
        epsmax=1e8,
    ),
}


def preset(name: str) -> SearchParameters:
    """The named preset ('o3' or 'o4')."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ConfigurationError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None
