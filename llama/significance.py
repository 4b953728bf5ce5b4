"""From inputs to the significance JSON of SCIENCE.md section 8: one path for every front door.

:func:`compute` is what ``llama significance`` and the Luigi tasks (llama.tasks) both call, with
one :class:`llama.config.Settings`, so the same inputs and settings give the same science
whichever way a user asks. The science itself lives in llama.science (pure numpy).
Outputs are deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llama import __version__
from llama.config import Settings
from llama.errors import InputError
from llama.io.populations import evaluate
from llama.science.pvalue import PValue, population_key
from llama.science.searches import search as search_named

if TYPE_CHECKING:  # imported where used: scipy makes it slow to import
    from llama.io.background_sample import BackgroundSample
    from llama.io.neutrinos import NeutrinoList
    from llama.io.skymap_geometry import SkyMap
    from llama.science import odds as odds_mod
    from llama.science.parameters import SearchParameters

log = logging.getLogger(__name__)

#: Where an SNR or p_terrestrial came from when the trigger gives none.
DEFAULT_SNR_ORIGIN = "[llama] default_snr (the alert has no SNR)"
DEFAULT_P_TERRESTRIAL_ORIGIN = "[llama] p_terrestrial"
#: Largest difference (s) between the given event time and the sky map's DATE-OBS or an
#: IceCube notice's trigger time before `llama significance` refuses the inputs.
TIME_TOLERANCE_S = 1.0
SECONDS_PER_DAY = 86400.0


def parse_event_time(text: str | float) -> float:
    """UTC MJD of an event time given as GPS seconds or an ISO-8601 UTC string."""
    from astropy.time import Time

    try:
        value = float(text)
    except (TypeError, ValueError):
        value = None
    try:
        t = Time(value, format="gps") if value is not None else Time(str(text), scale="utc")
        return float(t.utc.mjd)
    except ValueError as err:
        raise InputError(
            f"cannot parse event time {text!r}: give GPS seconds or ISO-8601 UTC ({err})"
        ) from None


def mjd_to_iso(mjd: float) -> str:
    """ISO-8601 UTC string of an MJD, millisecond precision."""
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot[:23]


def mjd_to_gps(mjd: float) -> float:
    """GPS seconds of a UTC MJD."""
    from astropy.time import Time

    return float(Time(mjd, format="mjd", scale="utc").gps)


@dataclass
class Inputs:
    """One event's inputs to a search."""

    skymap: SkyMap
    neutrinos: NeutrinoList  # already cut to the time window
    trigger: odds_mod.GwTrigger
    model: odds_mod.SearchModel
    n_outside_window: int = 0


def make_trigger(
    skymap: SkyMap,
    event_mjd: float,
    snr: float,
    instruments: Sequence[str] | None = None,
    p_terrestrial: float = 1.0,
    group: str = "CBC",
    far: float | None = None,
    graceid: str | None = None,
    distance: float | None = None,
) -> odds_mod.GwTrigger:
    """A GwTrigger; distance defaults to the sky map's DISTMEAN, and Burst triggers have none."""
    from llama.science import odds as odds_mod

    if not (isinstance(snr, (int, float)) and math.isfinite(snr) and snr > 0):
        raise InputError(f"network SNR must be a positive number, got {snr!r}")
    if not 0.0 <= p_terrestrial <= 1.0:
        raise InputError(f"p_terrestrial must lie in [0, 1], got {p_terrestrial}")
    if distance is not None and not (math.isfinite(distance) and distance > 0):
        raise InputError(f"distance must be a positive number of Mpc, got {distance}")
    if instruments is None or len(instruments) == 0:
        instruments = skymap.meta.get("instruments") or []
    if group.lower() == "burst":
        distance = None
    elif distance is None:
        distance = skymap.distance_mean()
        if distance is None:
            log.warning("sky map has no distance information: using the Burst (no-distance) form")
    return odds_mod.GwTrigger(
        time_mjd=event_mjd,
        snr=float(snr),
        instruments=tuple(sorted(instruments)),
        distance=distance,
        p_terrestrial=float(p_terrestrial),
        far=far,
        graceid=graceid,
    )


def fill_missing_energies(neutrinos: NeutrinoList, assumed_energy: float | None) -> NeutrinoList:
    """Give neutrinos without an energy (NaN; e.g. from an LVK Nu Track Search notice) the
    assumed energy in GeV; None leaves them as they are."""
    if assumed_energy is not None:
        if not (math.isfinite(assumed_energy) and assumed_energy > 0):
            raise InputError(f"assumed energy must be a positive number of GeV, got {assumed_energy}")
        energy = np.asarray(neutrinos.energy, float)
        neutrinos.energy = np.where(np.isnan(energy), assumed_energy, energy)
    return neutrinos


def in_window(
    neutrinos: NeutrinoList, trigger: odds_mod.GwTrigger, params: SearchParameters
) -> tuple[NeutrinoList, int]:
    """The neutrinos within +-window s of the trigger, and how many were outside."""
    dt = (np.asarray(neutrinos.mjd, float) - trigger.time_mjd) * 86400.0
    keep = np.abs(dt) <= params.window
    if np.any(np.isnan(np.asarray(neutrinos.energy, float)[keep])):
        raise InputError(
            f"{neutrinos.source or 'neutrino list'}: some neutrinos have no energy "
            "(e.g. an LVK Nu Track Search notice): give an assumed energy "
            "(--assumed-energy GEV, or [llama] assumed_energy for the Luigi tasks)"
        )
    return neutrinos.select(keep), int((~keep).sum())


def time_span(neutrinos: NeutrinoList) -> tuple[float, float] | None:
    """(first, last) MJD a neutrino source covers: the archive's span when it says, else its
    first and last neutrino; None for an empty list."""
    span = neutrinos.meta.get("time_span_mjd")
    if span is None and len(neutrinos):
        span = (float(np.min(neutrinos.mjd)), float(np.max(neutrinos.mjd)))
    return None if span is None else (float(span[0]), float(span[1]))


def check_coverage(
    neutrinos: NeutrinoList, event_mjd: float, window_s: float, open_ended: bool = False
) -> None:
    """Refuse, in one line naming the source's time span, a neutrino source that does not
    cover the window around the event: it starts after the window, or (unless ``open_ended``:
    a live source that may still grow) it ends before it. A silent '0 neutrinos' from such a
    source would read as a real null result."""
    span = time_span(neutrinos)
    if span is None:
        return
    window = window_s / SECONDS_PER_DAY
    starts_after = span[0] > event_mjd + window
    ends_before = span[1] < event_mjd - window and not open_ended
    if starts_after or ends_before:
        raise InputError(
            f"{neutrinos.source or 'neutrino list'}: its neutrinos span {mjd_to_iso(span[0])} .. "
            f"{mjd_to_iso(span[1])} UTC, which does not cover the event time "
            f"{mjd_to_iso(event_mjd)} UTC +-{window_s:.0f} s: use a neutrino source that covers it"
        )


def check_event_time(
    skymap: SkyMap,
    neutrinos: NeutrinoList,
    event_mjd: float,
    graceid: str | None,
    tolerance_s: float = TIME_TOLERANCE_S,
) -> None:
    """Refuse an event time more than ``tolerance_s`` from the sky map's DATE-OBS or from an
    IceCube notice's trigger time, and a notice whose ref_ID names another event."""
    from astropy.time import Time

    checks = []
    if skymap.meta.get("date_obs"):
        try:
            map_mjd = float(Time(skymap.meta["date_obs"], scale="utc").mjd)
        except ValueError:
            map_mjd = None
        if map_mjd is not None:
            name = (skymap.meta.get("path") or "sky map").rsplit("/", 1)[-1]
            checks.append((map_mjd, f"the sky map's DATE-OBS ({name})"))
    if neutrinos.meta.get("trigger_time_mjd") is not None:
        checks.append((neutrinos.meta["trigger_time_mjd"], f"the trigger time of {neutrinos.source}"))
    for mjd, what in checks:
        offset = (event_mjd - mjd) * SECONDS_PER_DAY
        if abs(offset) > tolerance_s:
            raise InputError(
                f"event time {mjd_to_iso(event_mjd)} UTC is {offset:+.3f} s from {what}, "
                f"{mjd_to_iso(mjd)} UTC (GPS {mjd_to_gps(mjd):.3f}): give the event's own time, "
                "or --allow-time-mismatch"
            )
    ref_id = neutrinos.meta.get("ref_id")
    if ref_id and graceid and str(ref_id) != graceid:
        raise InputError(
            f"{neutrinos.source}: notice is for {ref_id}, not {graceid}: give the event's own "
            "notice, or --allow-time-mismatch"
        )


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _skymap_info(inputs: Inputs, facts: TriggerFacts | None) -> dict:
    """gw_skymap_info: the original LLAMA O4 keys (SCIENCE.md section 8; null where unknown)
    and ours beside them."""
    meta, trig = inputs.skymap.meta, inputs.trigger
    skymap_name = (meta.get("path") or "").rsplit("/", 1)[-1]
    original = {
        "graceid": trig.graceid,
        "event_time": mjd_to_iso(trig.time_mjd),
        "far": trig.far,
        "pipeline": facts.pipeline if facts else None,
        "alert_type": facts.alert_type if facts else None,
        "notice_time": facts.notice_time if facts else None,
        "skymap_filename": skymap_name or None,
        "gracedb_service_url": facts.gracedb_service_url if facts else None,
    }
    return {
        **original,
        "skymap": skymap_name,
        "skymap_sha256": meta.get("sha256"),
        "object": meta.get("object"),
        "multiorder": bool(inputs.skymap.is_moc),
        "event_time_mjd": trig.time_mjd,
        "event_time_iso": mjd_to_iso(trig.time_mjd),
        "event_time_gps": mjd_to_gps(trig.time_mjd),
        "snr": trig.snr,
        "instruments": list(trig.instruments),
        "p_terrestrial": trig.p_terrestrial,
        "distance_mpc": trig.distance if trig.has_distance else None,
        "distance_std_mpc": meta.get("diststd"),
        "far_hz": trig.far,
        "graceid": trig.graceid,
        "burst": not trig.has_distance,
    }


def _neutrino_rows(
    neutrinos: NeutrinoList,
    terms: odds_mod.NeutrinoTerms,
    odds: np.ndarray,
    pvalue: PValue,
    extra: dict | None = None,
) -> list[dict]:
    rows = []
    for i, record in enumerate(neutrinos.to_records()):
        # "<run>_<event>"; with the run unknown the event number alone may repeat (release
        # tables number rows per season), so the position in the list keeps the id unique
        run = record.get("run")
        row = {
            "i3event": f"{run}_{record.get('event')}" if run is not None else f"unknown-run_{i}",
            "dt": float(terms.dt[i]),
            "ra": record["ra"],
            "dec": record["dec"],
            "sigma": record["sigma"],
            "odds_ratio": float(odds[i]),
            "p_value": pvalue.of(float(odds[i])),
        }
        for name, values in (extra or {}).items():
            row[name] = float(values[i])
        rows.append(row)
    return rows


def run_search(
    search: str,
    inputs: Inputs,
    populations: str | None = None,
    population: str = "bns",
    sensitivity: str | None = None,
    facts: TriggerFacts | None = None,
) -> dict:
    """Run ``search`` ('subthreshold' or 'opa') and return the output JSON as a dict;
    ``facts`` fill the original gw_skymap_info keys the trigger does not hold."""
    search_function = search_named(search).function
    model, trigger = inputs.model, inputs.trigger
    sensitivity = sensitivity or model.preset_name
    key = population_key(search, population, sensitivity, trigger.instruments or ["unknown"])
    parameters = {
        **model.describe(),
        "population": population,
        "sensitivity": sensitivity,
        "instruments": list(trigger.instruments),
        "population_key": key,
        "search": search,
        "llama_version": __version__,
    }
    inputs_block = {
        "gw_skymap_info": _skymap_info(inputs, facts),
        "neutrino_info": inputs.neutrinos.to_records(),
        "search_parameters": parameters,
    }
    if search == "subthreshold":
        result = search_function(inputs.skymap, inputs.neutrinos, trigger, model)
        pvalue = evaluate(result.odds_ratio, populations, key)
        output = {
            "p_value": pvalue.value,
            "odds_ratio": result.odds_ratio,
            "p_h_s1": result.p_h_s1,
            "p_h_s2": result.p_h_s2,
            "p_h_0": result.p_h_0,
            "p_h_c": result.p_h_c,
            "n_background": pvalue.n_background,
            "single_neutrino": _neutrino_rows(
                inputs.neutrinos, result.terms, result.single_odds, pvalue
            ),
        }
    else:
        result = search_function(inputs.skymap, inputs.neutrinos, trigger, model)
        pvalue = evaluate(result.odds_ratio, populations, key)
        output = {
            "p_value": pvalue.value,
            "odds_ratio": result.odds_ratio,
            "n_background": pvalue.n_background,
            "single_neutrino": _neutrino_rows(
                inputs.neutrinos,
                result.terms,
                result.odds,
                pvalue,
                {"p_s1": result.p_s1, "p_s2": result.p_s2, "p_c": result.p_c},
            ),
        }
    output["far"] = None if pvalue.value is None else pvalue.value * model.params.ratebggw
    output["p_value_note"] = _p_value_note(pvalue)
    output["retracted"] = bool(facts and facts.retracted)
    from llama.io.tables import neutrino_flux_sensitivity_range  # E^-2 limits, SCIENCE.md 8

    output["neutrino_flux_sensitivity_range"] = neutrino_flux_sensitivity_range(inputs.skymap)
    terms = result.terms
    output["dump"] = {
        **result.dump,
        "n_outside_window": inputs.n_outside_window,
        "populations_file": (pvalue.source or "").rsplit("/", 1)[-1] or None,
        "neutrinos": {
            "dt_s": terms.dt,
            "time_overlap_s": terms.overlap,
            "P_emp_nu": terms.p_emp,
            "energy_for_A_gev": terms.energy,
            "zenith_weight": terms.zenith_weight,
            "sky_sum": terms.sky,
            "sky_sum_normalised_psf": terms.sky_norm,
        },
    }
    output["inputs"] = inputs_block
    return _clean(output)


def _p_value_note(pvalue: PValue) -> str | None:
    """Says when p = 1/(N+1): no background trial reached the odds, the population's limit."""
    if pvalue.value is not None and pvalue.value == 1.0 / (1 + pvalue.n_background):
        return (
            f"p = 1/(N+1) with N = {pvalue.n_background}: the resolution limit of the population "
            "(no background trial reached these odds); the true p-value may be smaller"
        )
    return None


@dataclass(frozen=True)
class TriggerFacts:
    """What the alert (or the command line) says of the GW trigger; None where it says nothing.

    ``source`` names where the facts came from ("skymap_info", "command line"); it is recorded
    as the origin of the SNR and p_terrestrial in search_parameters.
    """

    event_time: str | float  # GPS seconds or ISO-8601 UTC
    snr: float | None = None
    instruments: Sequence[str] | None = None
    p_terrestrial: float | None = None
    group: str | None = None  # "CBC" or "Burst"; None: CBC
    far: float | None = None  # Hz
    graceid: str | None = None
    distance: float | None = None  # Mpc; None: the sky map's DISTMEAN
    source: str = "trigger"
    pipeline: str | None = None
    alert_type: str | None = None
    notice_time: str | None = None  # ISO-8601 UTC
    gracedb_service_url: str | None = None
    retracted: bool = False  # the event was retracted and the product asked for anyway


def load_background_sample(settings: Settings) -> BackgroundSample:
    """The neutrino background sample the settings name (default: the packaged one)."""
    from llama.io.background_sample import default_background_sample, read_background_sample

    if settings.neutrino_background:
        return read_background_sample(settings.neutrino_background)
    return default_background_sample()


def build_model(settings: Settings, sample: BackgroundSample | None = None) -> odds_mod.SearchModel:
    """The search model the settings select: preset, energy weight, neutrino background sample
    and GW SNR background (``sample`` saves reading the sample twice)."""
    from llama.io.tables import load_model, read_gw_snr_background
    from llama.science.parameters import preset

    gw_background = None
    if settings.gw_background_snr:
        gw_background = read_gw_snr_background(
            settings.gw_background_snr, preset(settings.preset).rhomin
        )
    sample = sample if sample is not None else load_background_sample(settings)
    return load_model(settings.preset, settings.energy_weight, sample, gw_background)


def resolve_trigger(
    skymap: SkyMap, neutrinos: NeutrinoList, facts: TriggerFacts, settings: Settings
) -> tuple[odds_mod.GwTrigger, str, str]:
    """(trigger, origin of its SNR, origin of its p_terrestrial): the SNR and p_terrestrial
    come from ``facts``, else from the settings."""
    if facts.snr is not None:
        snr, snr_origin = facts.snr, f"{facts.source} snr"
    else:
        snr, snr_origin = settings.default_snr, DEFAULT_SNR_ORIGIN
    if facts.p_terrestrial is not None:
        p_terrestrial, p_origin = facts.p_terrestrial, f"{facts.source} p_terrestrial"
    else:
        p_terrestrial, p_origin = settings.p_terrestrial, DEFAULT_P_TERRESTRIAL_ORIGIN
    trigger = make_trigger(
        skymap,
        parse_event_time(facts.event_time),
        snr,
        facts.instruments,
        p_terrestrial,
        facts.group or "CBC",
        facts.far,
        facts.graceid or neutrinos.meta.get("ref_id"),
        facts.distance,
    )
    return trigger, snr_origin, p_origin


def compute(
    search: str,
    skymap: SkyMap,
    neutrinos: NeutrinoList,
    facts: TriggerFacts,
    settings: Settings,
    model: odds_mod.SearchModel | None = None,
    check_times: bool = False,
) -> dict:
    """The significance JSON (SCIENCE.md section 8) of one search for one trigger.

    ``neutrinos`` is the whole list read from its source: a source that does not cover the
    event time is refused (:func:`check_coverage`), neutrinos without energy get
    ``settings.assumed_energy``, and only those within +-window s of the trigger are used.
    With ``check_times`` the event time must agree with the sky map's DATE-OBS and an IceCube
    notice's trigger time and ref_ID (:func:`check_event_time`).
    The SNR and p_terrestrial come from ``facts``, else from the settings, and their origins
    are recorded in search_parameters. ``model`` defaults to :func:`build_model(settings)`.
    ``neutrino_list_complete`` is what a LLAMA list file says (``complete``; None when the
    source says nothing): false marks a partial result (SCIENCE.md section 1).
    """
    model = model or build_model(settings)
    trigger, snr_origin, p_origin = resolve_trigger(skymap, neutrinos, facts, settings)
    if check_times:
        check_event_time(skymap, neutrinos, trigger.time_mjd, trigger.graceid)
    check_coverage(neutrinos, trigger.time_mjd, model.params.window)
    listed = fill_missing_energies(neutrinos, settings.assumed_energy)
    selected, outside = in_window(listed, trigger, model.params)
    output = run_search(
        search,
        Inputs(skymap, selected, trigger, model, outside),
        settings.populations_file,
        settings.population,
        settings.sensitivity,
        facts,
    )
    output["inputs"]["search_parameters"].update(
        snr_origin=snr_origin, p_terrestrial_origin=p_origin
    )
    output["neutrino_list_complete"] = neutrinos.meta.get("complete")
    return output


def to_json(output: dict) -> str:
    """Deterministic JSON text (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(output, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _g(value: float | None, digits: int = 3) -> str:
    """A number for the summary; None (NaN or infinite in the JSON) as 'inf/NaN'."""
    return "inf/NaN" if value is None else f"{value:.{digits}g}"


def summary(output: dict) -> list[str]:
    """A few human-readable lines about a result."""
    info = output["inputs"]["gw_skymap_info"]
    params = output["inputs"]["search_parameters"]
    p = output["p_value"]
    p_text = (
        f"{p:.3g} (N_bg = {output['n_background']}, {params['population_key']})"
        if p is not None
        else f"null (no population {params['population_key']})"
    )
    n = len(output["inputs"]["neutrino_info"])
    lines = [
        f"{info.get('graceid') or info.get('object') or info['skymap']}: {params['search']} search, "
        f"preset {params['preset']}, {'Burst/no-distance' if info['burst'] else 'CBC'}"
        + ("" if info["burst"] else f", d = {info['distance_mpc']:.1f} Mpc"),
        f"  neutrinos within +-{params['window']:.0f} s: {n}   odds ratio: {_g(output['odds_ratio'], 4)}"
        f"   p-value: {p_text}",
    ]
    if output.get("p_value_note"):
        lines.append(f"  {output['p_value_note']}")
    if output.get("event_p_value") is not None:
        trials = output["event_trials"]
        lines.append(
            f"  event-specific p-value: {output['event_p_value']:.3g} ({trials['n_at_or_above']} of "
            f"{trials['n_trials']} background trials on this sky map reach the odds; "
            f"{trials['mode']} mode)"
        )
    if output.get("far") is not None:
        lines.append(f"  joint FAR = p x GW trigger rate = {output['far']:.3g} Hz")
    if output.get("retracted"):
        lines.append("  RETRACTED event: computed only because it was asked for")
    if output.get("neutrino_list_complete") is False:
        lines.append("  PARTIAL RESULT: the neutrino list is incomplete (updated when it is)")
    rows = sorted(output["single_neutrino"], key=lambda r: -(r["odds_ratio"] or 0.0))
    if rows:
        top = rows[0]
        lines.append(
            f"  strongest neutrino {top['i3event']}: dt = {top['dt']:+.1f} s, "
            f"RA {top['ra']:.2f} Dec {top['dec']:+.2f}, odds {_g(top['odds_ratio'])}"
        )
    return lines
