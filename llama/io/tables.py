"""Model tables: read the detector and background tables the science needs and build a model.

The science (llama.science) does no file I/O; this module reads the packaged tables
(``llama/data``: aeff_lookup.csv, IC86_II_effectiveArea.csv, zenith_weights.csv), an
optional list of GW background SNRs and the neutrino background sample, and assembles a
:class:`llama.science.odds.SearchModel` from them; it also reads a public effective area in
cm^2 for the flux sensitivity of a sky map (llama.science.flux_limits).
"""

from __future__ import annotations

import csv
import os
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import numpy as np

from llama.errors import ConfigurationError, InputError
from llama.io.background_sample import BackgroundSample
from llama.io.skymap_geometry import SkyMap, nside_to_order, pix2xyz, uniq_to_order_ipix
from llama.science.background import GwSnrBackground, NeutrinoBackgroundDensity
from llama.science.detector import (
    EffectiveArea,
    EnergyAngleWeight,
    O3Table,
    PublicEffectiveArea,
    ZenithWeights,
)
from llama.science.flux_limits import credible_region, flux_sensitivity_range
from llama.science.odds import SearchModel
from llama.science.parameters import preset

#: The package's data directory (tables and the packaged neutrino background sample).
DATA = resources.files("llama") / "data"
ENERGY_WEIGHTS = ("o3-table", "public-aeff")


def _read_commented_csv(source: Path | Traversable, what: str) -> list[dict[str, str]]:
    """Rows of a CSV whose leading '#' lines are comments."""
    try:
        with source.open(encoding="utf-8") as stream:
            lines = [line for line in stream if not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{source}: cannot read {what}: {err}") from None
    return list(csv.DictReader(lines))


def read_o3_table(path: str | os.PathLike | None = None) -> O3Table:
    """The LLAMA O3 energy/angle table (default: the packaged ``aeff_lookup.csv``)."""
    source = Path(path) if path else DATA / "aeff_lookup.csv"
    return O3Table.from_rows(_read_commented_csv(source, "energy/angle table"), str(source))


def read_effective_area(
    path: str | os.PathLike | None = None, epsmin: float = 10.0, epsmax: float = 1e9
) -> PublicEffectiveArea:
    """A public IceCube ``*_effectiveArea.csv`` folded with E^-2 over [epsmin, epsmax] GeV
    (default: the packaged IC86-II table)."""
    source = Path(path) if path else DATA / "IC86_II_effectiveArea.csv"
    try:
        table = np.loadtxt(source, skiprows=1)
        if table.ndim != 2 or table.shape[1] != 5:
            raise ValueError(f"expected 5 columns, found shape {table.shape}")
    except (OSError, ValueError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{source}: cannot read effective-area table: {first_line}") from None
    return PublicEffectiveArea.from_table(table, epsmin, epsmax, Path(str(source)).name)


def read_zenith_weights(path: str | os.PathLike | None = None) -> ZenithWeights:
    """Signal zenith weights per 5-deg band (default: the packaged ``zenith_weights.csv``)."""
    source = Path(path) if path else DATA / "zenith_weights.csv"
    return ZenithWeights.from_rows(_read_commented_csv(source, "zenith weights"), str(source))


def energy_weight(name: str, epsmin: float = 10.0, epsmax: float = 1e9) -> EnergyAngleWeight:
    """The named energy/angle weight model ('o3-table' or 'public-aeff')."""
    if name == "o3-table":
        return read_o3_table()
    if name == "public-aeff":
        return read_effective_area(epsmin=epsmin, epsmax=epsmax)
    raise ConfigurationError(
        f"unknown energy weight {name!r}; choose one of {', '.join(ENERGY_WEIGHTS)}"
    )


def read_gw_snr_background(path: str | os.PathLike, rhomin: float) -> GwSnrBackground:
    """Background-trigger network SNRs, one per line (text, '#' comments allowed)."""
    try:
        snrs = np.loadtxt(path, ndmin=1, comments="#")
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot read background SNR list: {first}") from None
    if snrs.ndim != 1:
        raise InputError(f"{path}: background SNR list must have one value per line")
    return GwSnrBackground(
        snrs, rhomin, description=f"histogram of {snrs.size} background SNRs from {path}"
    )


def load_model(
    preset_name: str = "o3",
    weight: str = "o3-table",
    background_sample: BackgroundSample | None = None,
    gw_background: GwSnrBackground | None = None,
    **overrides: float,
) -> SearchModel:
    """A SearchModel from a preset (with parameter ``overrides``), an energy-weight name, a
    neutrino background sample (default: the packaged one) and a GW SNR background
    (default: the analytic noise tail)."""
    params = preset(preset_name).replace(**overrides) if overrides else preset(preset_name)
    if background_sample is None:
        from llama.io.background_sample import default_background_sample

        background_sample = default_background_sample()
    return SearchModel(
        params=params,
        energy_weight=energy_weight(weight, params.epsmin, params.epsmax),
        zenith_weights=read_zenith_weights(),
        nu_background=NeutrinoBackgroundDensity.from_sample(
            background_sample, params.delta_omega, params.delta_E
        ),
        gw_background=gw_background or GwSnrBackground(rhomin=params.rhomin),
        preset_name=preset_name,
    )


def read_effective_area_cm2(path: str | os.PathLike | None = None) -> EffectiveArea:
    """A public IceCube ``*_effectiveArea.csv`` as it is (cm^2, not normalised); default: the
    packaged IC86-II table, the 10-year release's latest season (IC86-2012 to IC86-2017)."""
    source = Path(path) if path else DATA / "IC86_II_effectiveArea.csv"
    try:
        table = np.loadtxt(source, skiprows=1, ndmin=2)
        if table.shape[1] != 5 or not np.all(np.isfinite(table)) or np.any(table[:, 4] < 0):
            raise ValueError(f"expected 5 finite columns and A_eff >= 0, found shape {table.shape}")
    except (OSError, ValueError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{source}: cannot read effective-area table: {first_line}") from None
    return EffectiveArea.from_table(table)


def neutrino_flux_sensitivity_range(
    skymap: SkyMap, path: str | os.PathLike | None = None
) -> dict[str, list[float]]:
    """``neutrino_flux_sensitivity_range`` of a GW sky map (llama.science.flux_limits) with
    the effective area at ``path`` (default: the packaged IC86-II table). Only the credible
    region's pixels are located on the sky."""
    region = credible_region(skymap.prob, skymap.pixel_area())
    if skymap.is_moc:
        order, ipix = uniq_to_order_ipix(skymap.uniq[region])
    else:
        order, ipix = nside_to_order(skymap.nside), region
    dec = np.degrees(np.arcsin(np.clip(pix2xyz(order, ipix)[:, 2], -1.0, 1.0)))
    return flux_sensitivity_range(read_effective_area_cm2(path), dec, float(dec[0]))
