"""The joint result for GCN: the IceCube "LVK Nu Track Search" notice and a circular draft.

Notice (JSON, schema gcn/notices/icecube/lvk_nu_track_search.schema.json, SCIENCE.md section 8):
``pval_bayesian`` is our p-value (null when no background population), ``pval_generic`` is null
(that is IceCube's other search), ``n_events_coincident`` the number of neutrinos in the +-500 s
window, and ``coincident_events`` lists only the neutrinos whose own p-value is below 0.1, each
with ``event_dt`` (neutrino minus GW time, s), RA/Dec and ``ra_dec_error`` = the 90% radius
(2.146 sigma, deg). ``neutrino_flux_sensitivity_range`` (E^2 dN/dE range in GeV cm^-2 over the
90% region for an E^-2 flux, and its 5-95% energy range in GeV; llama.science.flux_limits) is
copied from the significance, to 3 significant digits. ``alert_datetime`` is the time the notice
was made: it is the one value not determined by the inputs (see :data:`VOLATILE_KEYS`).
A partial result (significance with ``neutrino_list_complete: false``) says so in
``additional_info`` (:data:`PARTIAL_NOTE`).

Circular (plain text) in the style of the IceCube circulars for LVK alerts: the window, the
number of coincident tracks, the table (dt stated as track minus GW) and the p-value; a
partial result opens with :data:`PARTIAL_NOTE`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from llama.render.result import NA, NOTICE_P_LIMIT, Neutrino, Result, fmt

SCHEMA_ID = "https://gcn.nasa.gov/schema/main/gcn/notices/icecube/lvk_nu_track_search.schema.json"
NOTICE_TYPE = "IceCube LVK Alert Nu Track Search"
#: Keys of the notice that are not determined by the inputs (excluded when comparing content).
VOLATILE_KEYS = ("alert_datetime",)
#: Half width of the search window, s (SCIENCE.md section 1).
WINDOW_S = 500.0
SECONDS_PER_DAY = 86400.0
#: Line width of the circular's paragraphs (table rows are never wrapped).
WIDTH = 79
#: How the notice and the circular mark a result from an incomplete neutrino list.
PARTIAL_NOTE = (
    "PARTIAL RESULT: the IceCube neutrino list was incomplete when this was computed (the "
    "+-500 s window had not closed, or no later neutrino had been seen yet); it is updated "
    "once the list is complete."
)


def _iso_z(mjd: float | None) -> str | None:
    """ISO-8601 UTC with a Z, millisecond precision, of an MJD (None stays None)."""
    if mjd is None:
        return None
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot[:23] + "Z"


def _significant(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits."""
    return float(f"{x:.{digits}g}")


def listed_neutrinos(result: Result) -> list[Neutrino]:
    """The neutrinos the notice lists: p-value known and below NOTICE_P_LIMIT."""
    return [n for n in result.neutrinos if n.p_value is not None and n.p_value < NOTICE_P_LIMIT]


def _event(nu: Neutrino) -> dict[str, Any]:
    return {
        "event_dt": round(nu.dt, 2) if nu.dt is not None else None,
        "localization": {
            "ra": round(nu.ra, 2),
            "dec": round(nu.dec, 2),
            "ra_dec_error": round(nu.r90, 2),
            "containment_probability": 0.9,
            "systematic_included": False,
        },
        "id": [nu.i3event],
        "event_pval_generic": None,
        "event_pval_bayesian": nu.p_value,
    }


def gcn_notice(
    result: Result, skymap_info: Mapping[str, Any], role: str, alert_datetime: str
) -> dict[str, Any]:
    """The notice as a dict (see the module docstring); ``role`` is the event's role flag
    (a test event gives ``alert_tense`` "test"), ``alert_datetime`` ISO-8601 UTC."""
    mjd = result.event_time_mjd
    record = skymap_info.get("ivorn", "")
    notice = {
        "$schema": SCHEMA_ID,
        "type": NOTICE_TYPE,
        "ref_ID": result.eventid,
        "alert_datetime": alert_datetime,
        "alert_tense": "test" if role == "test" else "current",
        "alert_type": "retraction" if skymap_info.get("retracted") else "initial",
        "trigger_time": _iso_z(mjd),
        "observation_start": _iso_z(None if mjd is None else mjd - WINDOW_S / SECONDS_PER_DAY),
        "observation_stop": _iso_z(None if mjd is None else mjd + WINDOW_S / SECONDS_PER_DAY),
        "observation_livetime": 2 * WINDOW_S,
        "pval_generic": None,
        "pval_bayesian": result.p_value,
        "n_events_coincident": len(result.neutrinos),
        "coincident_events": [_event(n) for n in listed_neutrinos(result)],
        "neutrino_flux_sensitivity_range": None if result.flux_sensitivity_range is None else {
            key: [_significant(x) for x in pair]
            for key, pair in result.flux_sensitivity_range.items()
        },
    }
    if record:
        notice["reference"] = {"gcn.notices.LVK.alert": record.rpartition("#")[2] or record}
    if result.partial:
        notice["additional_info"] = PARTIAL_NOTE
    return {key: value for key, value in notice.items() if value is not None or key.startswith("pval")}


def declared_content(notice: Mapping[str, Any]) -> dict[str, Any]:
    """The notice without its volatile keys: what two builds from the same inputs share."""
    return {key: value for key, value in notice.items() if key not in VOLATILE_KEYS}


def circular_text(result: Result, skymap_info: Mapping[str, Any]) -> str:
    """A plain-text GCN circular draft (trailing newline)."""
    start = _iso_z(None if result.event_time_mjd is None else
                   result.event_time_mjd - WINDOW_S / SECONDS_PER_DAY) or NA
    stop = _iso_z(None if result.event_time_mjd is None else
                  result.event_time_mjd + WINDOW_S / SECONDS_PER_DAY) or NA
    n = len(result.neutrinos)
    tracks = "track-like event" + ("" if n == 1 else "s")
    lines = [
        "TITLE:   GCN CIRCULAR",
        f"SUBJECT: LIGO/Virgo/KAGRA {result.eventid}: IceCube neutrino search, LLAMA "
        "(Low-Latency Algorithm for Multi-messenger Astrophysics) result",
        "",
        *([PARTIAL_NOTE, ""] if result.partial else []),
        f"IceCube data were searched for track-like muon neutrino events in a time range of "
        f"1000 seconds centered on the time of the gravitational-wave candidate "
        f"{result.eventid} ({start[:-1].replace('T', ' ')} UTC to {stop[:-1].replace('T', ' ')}"
        " UTC), using the Bayesian LLAMA search (Bartos et al. 2019, Phys. Rev. D 100, 083017;"
        " Countryman et al. 2019, arXiv:1901.05486).",
        "",
        f"{n} {tracks} {'was' if n == 1 else 'were'} found in temporal coincidence with "
        f"{result.eventid}. The joint odds ratio is {fmt(result.odds_ratio, '.3g')} and the "
        f"p-value of the joint observation is {fmt(result.p_value, '.4g')}"
        + ("" if result.n_background is None else
           f" (from {result.n_background} background trials)") + ".",
    ]
    if skymap_info.get("retracted"):
        lines += ["", f"NOTE: {result.eventid} has been RETRACTED by LVK."]
    if n:
        lines += ["", "Properties of the coincident events:", "",
                  f"{'dt[s]':>9}  {'RA[deg]':>8}  {'Dec[deg]':>8}  {'r90[deg]':>8}  {'p-value':>8}"]
        lines += [
            f"{fmt(nu.dt, '+.2f'):>9}  {fmt(nu.ra, '.2f'):>8}  {fmt(nu.dec, '+.2f'):>8}  "
            f"{fmt(nu.r90, '.2f'):>8}  {fmt(nu.p_value, '.4f'):>8}"
            for nu in result.neutrinos
        ]
        lines += [
            "",
            "where dt = time of the track event minus the time of the GW candidate (s; positive "
            "when the neutrino arrived after the GW signal), r90 = radius of the 90% "
            "containment circle of the track direction (2.146 sigma), p-value = the p-value of "
            "the joint observation with this track.",
        ]
    if result.flux_sensitivity_range:
        f_lo, f_hi = result.flux_sensitivity_range["flux_sensitivity"]
        e_lo, e_hi = result.flux_sensitivity_range["sensitive_energy_range"]
        lines += [
            "",
            f"Assuming an E^-2 spectrum, the sensitivity (90% CL upper limit for no coincident "
            f"track) to the time-integrated neutrino flux E^2 dN/dE ranges from {f_lo:.3g} to "
            f"{f_hi:.3g} GeV cm^-2 over the 90% credible region of {result.eventid}, for "
            f"neutrino energies between {e_lo:.3g} GeV and {e_hi:.3g} GeV (5%-95% of the "
            "signal), estimated from the public IceCube effective area.",
        ]
    lines += [
        "",
        "The IceCube Neutrino Observatory is a cubic-kilometer neutrino detector operating at "
        "the geographic South Pole, Antarctica. DRAFT produced by llama: to be reviewed before "
        "it is sent.",
    ]
    return "\n".join(
        line if line.startswith((" ", "TITLE", "SUBJECT")) or len(line) <= WIDTH
        else textwrap.fill(line, WIDTH)
        for line in lines
    ) + "\n"
