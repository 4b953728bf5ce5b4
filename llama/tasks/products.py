"""The products of one event, one file each, in ``<run>/<eventid>/``.

    SkymapInfo        skymap_info.json             written by `llama skymap-info` (external)
    GwSkymap          <sky map FITS>               named in skymap_info.json (external)
    Distances         lvc_skymap_distances.json    distance summary of the sky map
    NeutrinoList      icecube_neutrino_list.json   neutrinos within +-500 s (SCIENCE.md 1)
    Significance      significance_subthreshold_lvc-i3.json   subthreshold search (section 4)
    SignificanceOPA   significance_lvc-i3.json                OPA search (section 5)

Heavy modules (sky-map reader, science) are imported inside ``build`` so that importing
llama.tasks, and `luigi --module llama.tasks --help`, stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import luigi

from llama.config import settings
from llama.errors import ConfigurationError
from llama.io.storage import json_text, sha256_file
from llama.paths import safe_join
from llama.science.parameters import preset
from llama.science.searches import SEARCHES
from llama.tasks.base import EventTask, Product

#: Stand-in name (never a file) of the sky map while skymap_info.json names none.
NO_SKYMAP = ".no-skymap-named-in-skymap_info"
#: Latest arrival (s) of a neutrino in the source after it happened (SCIENCE.md section 1).
MAX_DELAY_S = 100.0
SECONDS_PER_DAY = 86400.0


class SkymapInfo(EventTask, luigi.ExternalTask):
    """skymap_info.json: what the latest LVK notice said (written by `llama skymap-info`)."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.event.skymap_info_path)


class GwSkymap(EventTask, luigi.ExternalTask):
    """The GW sky map named by skymap_info['skymap_filename'] (written by `llama skymap-info`,
    which records its sha256 in skymap_info.json); missing until a notice brought a map."""

    def output(self) -> luigi.LocalTarget:
        event = self.event
        name = event.skymap_info.get("skymap_filename") if event.skymap_info_path.exists() else None
        return luigi.LocalTarget(safe_join(event.directory, name or NO_SKYMAP))


class Distances(Product):
    """lvc_skymap_distances.json: posterior mean and standard deviation of the distance (Mpc),
    whether the map has distance layers, and which sky map (file name, sha256)."""

    filename = "lvc_skymap_distances.json"

    def requires(self) -> GwSkymap:
        return self.event_task(GwSkymap)

    def build(self, notes: dict[str, Any]) -> str:
        from llama.io.skymap import read_skymap

        skymap = read_skymap(self.input().path)
        distmean = skymap.distance_mean()
        if skymap.meta.get("distmean") is not None:
            origin = "header DISTMEAN"
        else:
            origin = "DISTMU/DISTSIGMA layers" if distmean is not None else None
        return json_text(
            {
                "distmean": distmean,
                "diststd": skymap.meta.get("diststd"),
                "distmean_origin": origin,
                "distance_layers": skymap.distmu is not None,
                "skymap": Path(self.input().path).name,
                "skymap_sha256": skymap.meta["sha256"],
            }
        )


class NeutrinoList(Product):
    """icecube_neutrino_list.json: the neutrinos within +-500 s of the GW time from the
    configured source ([llama] neutrino_source), as a LLAMA JSON list.

    The list is complete only when fetched after t_gw + 500 s + MAX_DELAY_S and the source
    holds a neutrino later than the window (SCIENCE.md section 1; defect 4 of section 7); an
    LVK Nu Track Search notice, IceCube's own result for the closed window, counts as having
    seen past it. The provenance records ``complete``; an incomplete list is not complete()
    for Luigi, so every run regenerates it (and what depends on it) until it is.
    """

    filename = "icecube_neutrino_list.json"
    info_keys = ("event_time_gps",)

    def requires(self) -> SkymapInfo:
        return self.event_task(SkymapInfo)

    def settings_used(self) -> dict[str, Any]:
        current = settings()
        return {
            "neutrino_source": current.neutrino_source,
            "neutrino_format": current.neutrino_format,
            "window_s": preset(current.preset).window,
        }

    def complete(self) -> bool:
        return super().complete() and (self.provenance() or {}).get("complete") is True

    def build(self, notes: dict[str, Any]) -> str:
        from astropy.time import Time

        from llama.io.neutrinos import ReleaseCatalog, detect_format, read_neutrinos
        from llama.significance import parse_event_time

        used = self.settings_used()
        source, window = used["neutrino_source"], used["window_s"]
        if not source:
            raise ConfigurationError(
                "no neutrino source: set neutrino_source in the [llama] section of luigi.cfg "
                "or $LLAMA_NEUTRINO_SOURCE"
            )
        t_gw = parse_event_time(self.used_info()["event_time_gps"])
        fetched = Time.now()
        form = used["neutrino_format"] or detect_format(source)
        if form == "release":
            catalog = ReleaseCatalog(source)
            everything, files = catalog.events, catalog.files
        else:
            everything, files = read_neutrinos(source, form), [Path(source)]
        selected = everything.in_window(t_gw, window)
        # an LVK Nu Track Search notice is IceCube's own result for the closed window
        later = form == "lvk-notice" or bool((everything.mjd > t_gw + window / SECONDS_PER_DAY).any())
        waited = bool((fetched.utc.mjd - t_gw) * SECONDS_PER_DAY >= window + MAX_DELAY_S)
        notes.update(
            complete=later and waited,
            later_neutrino_seen=later,
            fetched_utc=fetched.utc.isot,
            n_neutrinos=len(selected),
            neutrino_source={
                "format": form,
                "files": {str(path): sha256_file(path) for path in files},
            },
        )
        return json_text(selected.to_records())


class Significance(Product):
    """significance_subthreshold_lvc-i3.json: the subthreshold search (SCIENCE.md section 4).

    SNR from skymap_info['snr'], else [llama] default_snr (LVK public notices carry none);
    p_terrestrial from classification['Terrestrial'], else [llama] p_terrestrial; both origins
    are recorded in search_parameters. Burst triggers have no distance. Same inputs, same bytes.
    """

    filename = SEARCHES["subthreshold"].output_file
    search: ClassVar[str] = "subthreshold"
    info_keys = ("event_time_gps", "snr", "instruments", "far", "group", "classification")

    def requires(self) -> dict[str, EventTask]:
        return {
            "info": self.event_task(SkymapInfo),
            "skymap": self.event_task(GwSkymap),
            "distances": self.event_task(Distances),
            "neutrinos": self.event_task(NeutrinoList),
        }

    def settings_used(self) -> dict[str, Any]:
        """Every [llama] setting the science reads (llama.significance.compute)."""
        current = settings()
        return {
            "preset": current.preset,
            "energy_weight": current.energy_weight,
            "populations": current.populations,
            "population": current.population,
            "sensitivity": current.sensitivity,
            "neutrino_background": current.neutrino_background,
            "gw_background_snr": current.gw_background_snr,
            "default_snr": current.default_snr,
            "p_terrestrial": current.p_terrestrial,
            "assumed_energy": current.assumed_energy,
        }

    def extra_inputs(self) -> list[Path]:
        current = settings()
        files = (current.populations, current.neutrino_background, current.gw_background_snr)
        return [Path(path) for path in files if path]

    def build(self, notes: dict[str, Any]) -> str:
        from llama.io.neutrinos import read_llama_json
        from llama.io.skymap import read_skymap
        from llama.significance import TriggerFacts, compute, to_json

        info = self.used_info()
        paths = {name: target.path for name, target in self.input().items()}
        facts = TriggerFacts(
            event_time=info["event_time_gps"],
            snr=info["snr"],
            instruments=info["instruments"],
            p_terrestrial=(info["classification"] or {}).get("Terrestrial"),
            group=info["group"],
            far=info["far"],
            graceid=self.eventid,
            distance=json.loads(Path(paths["distances"]).read_bytes())["distmean"],
            source="skymap_info",
        )
        output = compute(
            self.search,
            read_skymap(paths["skymap"]),
            read_llama_json(paths["neutrinos"]),
            facts,
            settings(),
        )
        notes["search_parameters"] = output["inputs"]["search_parameters"]
        return to_json(output)


class SignificanceOPA(Significance):
    """significance_lvc-i3.json: the OPA (per-neutrino) search (SCIENCE.md section 5)."""

    filename = SEARCHES["opa"].output_file
    search = "opa"
