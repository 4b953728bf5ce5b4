"""An event-specific p-value at alert time: background trials on the event's own sky map.

The population p-value compares an event's odds with trials on *other* (simulated) maps of
its population; this one draws N background neutrino lists for the event's own map, trigger
(time, SNR, distance, p_terrestrial) and model, and counts the trials whose odds reach the
event's: p = (1 + #(O_trial >= O)) / (1 + N) (SCIENCE.md section 6). It is added beside the
population p-value, never in its place.
"""

from __future__ import annotations

import math

import numpy as np

from llama.background.trials import run_trials
from llama.config import Settings
from llama.errors import InputError
from llama.io.background_sample import BackgroundSample
from llama.io.neutrinos import NeutrinoList
from llama.io.skymap_geometry import SkyMap
from llama.science.odds import SearchModel
from llama.significance import TriggerFacts, build_model, load_background_sample, resolve_trigger


def add_event_pvalue(
    output: dict,
    search: str,
    skymap: SkyMap,
    neutrinos: NeutrinoList,
    facts: TriggerFacts,
    settings: Settings,
    n_trials: int,
    mode: str = "fast",
    seed: int = 0,
    progress: bool | None = None,
    sample: BackgroundSample | None = None,
    model: SearchModel | None = None,
) -> dict:
    """Add ``event_p_value`` and ``event_trials`` (what was run) to a significance ``output``;
    ``sample`` and ``model`` default to those of ``settings`` (pass the ones already built)."""
    if n_trials < 1:
        raise InputError(f"event-specific trials: N must be at least 1, got {n_trials}")
    sample = sample or load_background_sample(settings)
    model = model or build_model(settings, sample)
    trigger, _, _ = resolve_trigger(skymap, neutrinos, facts, settings)
    trials = run_trials(skymap, trigger, model, sample, n_trials, seed, search, 0.0, progress, mode)
    observed = output["odds_ratio"]
    observed = math.inf if observed is None else float(observed)  # inf/NaN are null in the JSON
    reached = int(np.count_nonzero(trials.odds >= observed))
    output["event_p_value"] = (1 + reached) / (1 + n_trials)
    output["event_trials"] = {
        "n_trials": n_trials,
        "n_at_or_above": reached,
        "mode": mode,
        "seed": seed,
        "search": search,
        "description": "background neutrino lists drawn for this event's own sky map and "
        "trigger; p = (1 + #(O_trial >= O)) / (1 + N)",
    }
    return output
