"""The products of one event, one file each, in ``<run>/<eventid>/``.

    SkymapInfo        skymap_info.json             written by `llama skymap-info` (external)
    GwSkymap          <sky map FITS>               from the notice, or fetched from its URL
    Distances         lvc_skymap_distances.json    distance summary of the sky map
    NeutrinoList      icecube_neutrino_list.json   neutrinos within +-500 s (SCIENCE.md 1)
    Significance      significance_subthreshold_lvc-i3.json   subthreshold search (section 4)
    SignificanceOPA   significance_lvc-i3.json                OPA search (section 5)

Heavy modules (sky-map reader, science) are imported inside ``build`` so that importing
llama.tasks, and `luigi --module llama.tasks --help`, stay fast.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import luigi

from llama.config import settings
from llama.errors import ConfigurationError
from llama.io.storage import json_text, sha256_file
from llama.science.parameters import preset
from llama.science.searches import SEARCHES
from llama.tasks.base import EventTask, Product, log

#: Stand-in name (never a file) of the sky map while skymap_info.json names none.
NO_SKYMAP = ".no-skymap-named-in-skymap_info"
#: Latest arrival (s) of a neutrino in the source after it happened (SCIENCE.md section 1).
MAX_DELAY_S = 100.0
#: A live neutrino source that has not reached the window this long (s) after the event never
#: will: it does not cover the event.
STALE_AFTER_S = 86400.0
#: Neutrino sources whose content is fixed (their time span is all they will ever cover).
ARCHIVES = ("release", "icecat1")
#: Sources that are IceCube's own statement about the event: complete once the window closed.
CLOSED_SOURCES = ("lvk-notice", "icecube-alert")
SECONDS_PER_DAY = 86400.0


class SkymapInfo(EventTask, luigi.ExternalTask):
    """skymap_info.json: what the latest LVK notice said (written by `llama skymap-info`)."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.event.skymap_info_path)


class GwSkymap(Product):
    """The GW sky map of the latest notice: the file named by skymap_info['skymap_filename']
    (embedded in a Kafka alert or given by the user, written by the alert intake), else fetched
    from skymap_info['skymap_url'] (http/https; ``timeout_s`` per attempt, ``attempts`` tries
    with exponential backoff from ``backoff_s``) and saved under the URL's file name (GraceDB's
    ``,N`` version suffix removed). The provenance record holds its sha256 and URL; a notice
    with a new URL or map makes it obsolete. Without network the error names the URL and how
    to pass the file instead."""

    info_keys = ("skymap_filename", "skymap_sha256", "skymap_url")
    timeout_s = luigi.FloatParameter(default=30.0, significant=False,
                                     description="seconds per download attempt")
    attempts = luigi.IntParameter(default=3, significant=False, description="download attempts")
    backoff_s = luigi.FloatParameter(default=1.0, significant=False,
                                     description="wait before the 2nd attempt, doubled after")

    def requires(self) -> SkymapInfo:
        return self.event_task(SkymapInfo)

    @property
    def filename(self) -> str:  # type: ignore[override]
        """The embedded or given map's name, else the URL's file name, else NO_SKYMAP."""
        event = self.event
        info = event.skymap_info if event.skymap_info_path.exists() else {}
        if info.get("skymap_filename"):
            return info["skymap_filename"]
        if info.get("skymap_url"):
            name = info["skymap_url"].split("?")[0].rstrip("/").rsplit("/", 1)[-1].split(",")[0]
            return event.skymap_filename(name)
        return NO_SKYMAP

    def build(self, notes: dict[str, Any]) -> bytes:
        info = self.used_info()
        if info["skymap_filename"]:
            path = Path(self.output().path)
            if not path.exists():
                raise ConfigurationError(f"{self.eventid}: sky map {path} named in "
                                         "skymap_info.json is missing")
            notes["skymap_source"] = "notice"
            return path.read_bytes()
        if not info["skymap_url"]:
            raise ConfigurationError(f"{self.eventid}: the notices so far give no sky map "
                                     "(neither embedded nor a URL)")
        notes["skymap_source"] = "url"
        notes["skymap_url"] = info["skymap_url"]
        return self.fetch(info["skymap_url"])

    def fetch(self, url: str) -> bytes:
        """The bytes at ``url`` (http/https), retried with backoff; ConfigurationError naming
        the URL and the alternative (a local file) when every attempt fails."""
        import time
        import urllib.error
        import urllib.request

        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{self.eventid}: sky map URL {url!r} is not http(s)")
        reason = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:
                    return answer.read()
            except urllib.error.HTTPError as err:
                reason = f"HTTP {err.code} {err.reason}"
            except (urllib.error.URLError, OSError) as err:
                reason = str(getattr(err, "reason", err))
        raise ConfigurationError(
            f"{self.eventid}: cannot fetch sky map {url} ({reason}; {self.attempts} attempts): "
            f"download it elsewhere and pass it with `llama skymap-info --voevent NOTICE "
            f"--skymap FILE --run {self.event.run_dir}`"
        )


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
    configured source ([llama] neutrino_source), as the LLAMA neutrino list file
    ``{"triggers": [...], "complete": bool}`` (SCIENCE.md section 8).

    The list is complete when the source says so (a LLAMA list file with ``"complete": true``),
    or when fetched after t_gw + 500 s + MAX_DELAY_S and the source holds a neutrino later than
    the window (SCIENCE.md section 1; defect 4 of section 7); an LVK Nu Track Search notice
    (IceCube's own result for the closed window) and a gold/bronze track alert count as having
    seen past it. The provenance records ``complete`` and ``fetched_utc``.

    An incomplete list is a partial result (SCIENCE.md section 1): it stays up to date for
    [llama] partial_hold_s after its fetch, so the significances and the products after them
    are built from it at once (marked partial); after the hold it is stale, the next run
    fetches it again, and the products it feeds are rebuilt when its bytes changed (their
    recorded checksums), until it is complete (defect 4 of section 7).

    A source that does not cover the event time fails in one line naming its time span
    (llama.significance.check_coverage): archives (release tables, IceCat-1), complete lists,
    and live lists still short of the window STALE_AFTER_S after the event. Every product's
    record holds the source's time span.
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

    def up_to_date(self) -> tuple[bool, str]:
        """As Product's, and an incomplete list only during its hold (see the class
        docstring)."""
        fresh, reason = super().up_to_date()
        record = self.provenance() or {}
        if not fresh or record.get("complete") is True:
            return fresh, reason
        hold = settings().partial_hold_s
        try:
            fetched = datetime.fromisoformat(record["fetched_utc"]).replace(tzinfo=UTC)
        except (KeyError, TypeError, ValueError):
            return False, "incomplete list with no fetch time"
        age = (datetime.now(UTC) - fetched).total_seconds()
        held = 0 <= age < hold
        return held, (f"{'partial' if held else 'stale partial'} result: incomplete list "
                      f"fetched {age:.0f} s ago (hold {hold:g} s)")

    def build(self, notes: dict[str, Any]) -> str:
        from astropy.time import Time

        from llama.io.neutrinos import (
            ReleaseCatalog,
            detect_format,
            llama_json_text,
            read_neutrinos,
        )
        from llama.significance import check_coverage, mjd_to_iso, parse_event_time, time_span

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
        since = (fetched.utc.mjd - t_gw) * SECONDS_PER_DAY
        declared = everything.meta.get("complete")
        span = time_span(everything)
        notes["neutrino_source"] = {
            "format": form,
            "files": {str(path): sha256_file(path) for path in files},
            "time_span_utc": None if span is None else [mjd_to_iso(t) for t in span],
        }
        closed = form in ARCHIVES or declared is True or since > STALE_AFTER_S
        check_coverage(everything, t_gw, window, open_ended=not closed)
        selected = everything.in_window(t_gw, window)
        later = form in CLOSED_SOURCES or bool(
            (everything.mjd > t_gw + window / SECONDS_PER_DAY).any()
        )
        waited = bool(since >= window + MAX_DELAY_S)
        complete = declared is True or (later and waited)
        notes.update(
            complete=complete,
            later_neutrino_seen=later,
            fetched_utc=fetched.utc.isot,
            n_neutrinos=len(selected),
        )
        return llama_json_text(selected, complete)


class Significance(Product):
    """significance_subthreshold_lvc-i3.json: the subthreshold search (SCIENCE.md section 4).

    SNR from skymap_info['snr'], else [llama] default_snr (LVK public notices carry none);
    p_terrestrial from classification['Terrestrial'], else [llama] p_terrestrial; both origins
    are recorded in search_parameters. Burst triggers have no distance. Same inputs, same bytes.
    Built from an incomplete (held) neutrino list it is a partial result:
    ``neutrino_list_complete: false`` in the file and in its provenance record.
    """

    filename = SEARCHES["subthreshold"].output_file
    search: ClassVar[str] = "subthreshold"
    # alert_type and notice time are left out on purpose: a new notice that changes nothing
    # the science uses rebuilds nothing (they are null in gw_skymap_info)
    info_keys = (
        "event_time_gps", "snr", "instruments", "far", "group", "classification", "graceid",
        "pipeline",
    )

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
            "populations": current.populations_file,
            "population": current.population,
            "sensitivity": current.sensitivity,
            "neutrino_background": current.neutrino_background,
            "gw_background_snr": current.gw_background_snr,
            "default_snr": current.default_snr,
            "p_terrestrial": current.p_terrestrial,
            "assumed_energy": current.assumed_energy,
            "event_trials": current.event_trials,
            "event_trials_mode": current.event_trials_mode,
        }

    def extra_inputs(self) -> list[Path]:
        current = settings()
        files = (current.populations_file, current.neutrino_background, current.gw_background_snr)
        return [Path(path) for path in files if path]

    def build(self, notes: dict[str, Any]) -> str:
        from llama.io.neutrinos import read_llama_json
        from llama.io.skymap import read_skymap
        from llama.significance import TriggerFacts, compute, summary, to_json

        info = self.used_info()
        paths = {name: target.path for name, target in self.input().items()}
        facts = TriggerFacts(
            event_time=info["event_time_gps"],
            snr=info["snr"],
            instruments=info["instruments"],
            p_terrestrial=(info["classification"] or {}).get("Terrestrial"),
            group=info["group"],
            far=info["far"],
            graceid=info["graceid"] or self.eventid,
            distance=json.loads(Path(paths["distances"]).read_bytes())["distmean"],
            source="skymap_info",
            pipeline=info["pipeline"],
            retracted=self.retracted,
        )
        config = settings()
        skymap, neutrinos = read_skymap(paths["skymap"]), read_llama_json(paths["neutrinos"])
        output = compute(self.search, skymap, neutrinos, facts, config)
        if config.event_trials:
            from llama.background.event_trials import add_event_pvalue

            add_event_pvalue(output, self.search, skymap, neutrinos, facts, config,
                             config.event_trials, config.event_trials_mode, progress=False)
        notes["search_parameters"] = output["inputs"]["search_parameters"]
        notes["neutrino_list_complete"] = output["neutrino_list_complete"]
        self.summary_lines = summary(output)
        return to_json(output)

    def run(self) -> None:
        """Build, then log the same short summary as `llama significance`."""
        self.summary_lines: list[str] = []
        super().run()
        for line in self.summary_lines:
            log.info("llama: %s", line.strip())


class SignificanceOPA(Significance):
    """significance_lvc-i3.json: the OPA (per-neutrino) search (SCIENCE.md section 5)."""

    filename = SEARCHES["opa"].output_file
    search = "opa"
