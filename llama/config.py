"""Run-time settings: one :class:`Settings` object for the CLIs and the Luigi tasks alike.

Precedence: environment ``LLAMA_<NAME>`` > luigi.cfg ``[llama] <name>`` > the defaults here.
A command-line option overrides the setting of the same name for that command
(:meth:`Settings.replace`). The search parameters themselves (presets o3, o4) live in
llama.science.parameters.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama.errors import ConfigurationError

if TYPE_CHECKING:
    from luigi.configuration import LuigiConfigParser

#: llama's shipped Luigi defaults ([core], [retcode], [llama]); see :func:`luigi_config`.
PACKAGED_LUIGI_CFG = Path(__file__).with_name("luigi.cfg")
#: Background populations built by scripts/build_populations.py from simulated BAYESTAR maps.
PACKAGED_POPULATIONS = Path(__file__).with_name("data") / "populations.hdf5"
_PATH_SETTINGS = ("neutrino_source", "populations", "neutrino_background", "gw_background_snr")
_NUMBER_SETTINGS = ("default_snr", "p_terrestrial", "assumed_energy", "partial_hold_s")
_NON_NEGATIVE_SETTINGS = ("partial_hold_s",)
_COUNT_SETTINGS = ("event_trials",)


@dataclass(frozen=True)
class Settings:
    """The [llama] settings (documented in luigi.cfg); the science they select is the same
    whether `llama significance` or a Luigi task runs it."""

    neutrino_source: str | None = None
    """Absolute path: IceCube release directory or table, LLAMA JSON list or LVK notice."""
    neutrino_format: str | None = None
    """Format of neutrino_source (llama, release, icecat1, lvk-notice); None: detect."""
    preset: str = "o3"
    energy_weight: str = "o3-table"
    populations: str | None = None
    """Absolute path of the background populations HDF5; None: the packaged populations
    (llama/data/populations.hdf5); "none": no p-value (p_value null)."""
    population: str = "bns"
    sensitivity: str | None = None
    """Sensitivity component of the population key; None: the preset's name."""
    neutrino_background: str | None = None
    """Absolute path of a neutrino background sample (HDF5); None: the packaged IC40 sample."""
    gw_background_snr: str | None = None
    """Absolute path of background-trigger SNRs, one per line; None: analytic noise tail."""
    default_snr: float = 12.0
    """Network SNR used when skymap_info has none (LVK public alerts carry none)."""
    p_terrestrial: float = 1.0
    """p_terrestrial used when skymap_info has no classification['Terrestrial']."""
    assumed_energy: float | None = None
    """Energy (GeV) for neutrinos whose source gives none (LVK Nu Track Search notices)."""
    event_trials: int = 0
    """Background trials on the event's own sky map for an event-specific p-value; 0: none."""
    event_trials_mode: str = "fast"
    """Trials engine mode for event_trials: fast or exact."""
    partial_hold_s: float = 60.0
    """Seconds an incomplete neutrino list counts as done after its fetch (the products after
    it are built from it, marked partial); then it is fetched again. 0: wait for the complete
    list."""

    @property
    def populations_file(self) -> str | None:
        """The populations HDF5 the p-value uses: ``populations``, else the packaged file."""
        if self.populations is None:
            return str(PACKAGED_POPULATIONS) if PACKAGED_POPULATIONS.is_file() else None
        return None if Path(self.populations).name.lower() == "none" else self.populations

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given settings changed; None values are ignored (not given)."""
        given = {name: value for name, value in changes.items() if value is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name in _PATH_SETTINGS:
            if name in given:
                given[name] = str(Path(given[name]).expanduser().absolute())
        return dataclasses.replace(self, **given)


def luigi_config() -> LuigiConfigParser:
    """Luigi's configuration, with llama's packaged luigi.cfg as its lowest-priority file.

    Luigi reads its files in list order, later ones winning (/etc/luigi/luigi.cfg, ./luigi.cfg,
    $LUIGI_CONFIG_PATH). ``add_config_path`` appends, which would override the user's files,
    so the packaged file is put first instead and the files are read again.
    """
    from luigi.configuration import LuigiConfigParser, get_config

    path = str(PACKAGED_LUIGI_CFG)
    if path not in LuigiConfigParser._config_paths:
        LuigiConfigParser._config_paths.insert(0, path)
        LuigiConfigParser.reload()
    return get_config()


def _setting(name: str, raw: str, origin: str) -> Any:
    """A setting's value parsed from text; ConfigurationError names where the text came from."""
    if name in _NUMBER_SETTINGS:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigurationError(f"{origin}: {raw!r} is not a finite number")
        if name in _NON_NEGATIVE_SETTINGS and value < 0:
            raise ConfigurationError(f"{origin}: {raw!r} is negative")
        return value
    if name in _PATH_SETTINGS:
        return str(Path(raw).expanduser().absolute())
    if name in _COUNT_SETTINGS:
        if not raw.strip().isdigit():
            raise ConfigurationError(f"{origin}: {raw!r} is not a whole number >= 0")
        return int(raw)
    return raw


def settings() -> Settings:
    """Current settings: ``$LLAMA_<NAME>`` > luigi.cfg ``[llama] <name>`` > the defaults.

    Empty values count as unset. Read afresh on every call, so changes apply at once.
    """
    config = luigi_config()
    values = {}
    for field in dataclasses.fields(Settings):
        env = f"LLAMA_{field.name.upper()}"
        if os.environ.get(env):
            values[field.name] = _setting(field.name, os.environ[env], f"${env}")
        elif config.get("llama", field.name, ""):
            raw = config.get("llama", field.name)
            values[field.name] = _setting(field.name, raw, f"luigi.cfg [llama] {field.name}")
    return Settings(**values)
