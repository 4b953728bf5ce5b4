"""Products for people and for peers, rendered from the subthreshold significance (llama.render).

    ScatterPlot     scatterplot_lvc-i3.png + .pdf    sky plot (one task, two files, see below)
    NeutrinoTables  neutrinos_lvc-i3.txt + .tex      the neutrino table, text and LaTeX
    Summary         summary_lvc-i3.pdf               one-page summary for the on-call astronomer
    GcnNotice       gcn_notice_lvc-i3.json           IceCube "LVK Nu Track Search" notice
    GcnCircular     gcn_circular_lvc-i3.txt          plain-text circular draft

Two files from one task (ScatterPlot, NeutrinoTables): the figure is drawn once and saved as PNG
and PDF (drawing twice would double the cost). Each file is written atomically with its own
provenance record ``.<file>.meta.json``; both records hold the same inputs, settings and
parameters, and list the task's ``outputs``. The task is complete only while both files are up to
date, so a change to either (or to an input) rebuilds both.

matplotlib and ligo.skymap are imported inside ``build`` (through llama.render), so importing
llama.tasks stays light.
"""

from __future__ import annotations

import functools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from llama import provenance
from llama.event import FLAGS_FILE
from llama.io import storage
from llama.tasks.base import EventTask, Product, RetractedEvent, StorageTarget
from llama.tasks.products import GwSkymap, NeutrinoList, Significance, SkymapInfo


class FromSignificance(Product):
    """A product rendered from the subthreshold significance JSON."""

    def requires(self) -> dict[str, EventTask]:
        return {"significance": self.event_task(Significance)}

    def result(self) -> Any:
        """The significance as a llama.render.result.Result."""
        from llama.render.result import read_result

        return read_result(self.input()["significance"].path, self.eventid)

    def declared_content(self, data: bytes) -> bytes:
        """What two builds from the same inputs must share (all bytes, unless the product
        embeds a time); `llama provenance --verify` compares this."""
        return data


class WithEventState(FromSignificance):
    """A product that also shows the event's state: the alert (skymap_info.json, the keys
    below) and the flags (flags.json: role, retracted, ...)."""

    info_keys = ("alert_type", "pipeline", "group", "far", "instruments", "retracted", "ivorn")

    def requires(self) -> dict[str, EventTask]:
        return {**super().requires(), "info": self.event_task(SkymapInfo)}

    def extra_inputs(self) -> list[Path]:
        return [self.event.directory / FLAGS_FILE]


class MultiFileProduct(FromSignificance):
    """One task writing several files (``filenames``), each with its own provenance record
    (see the module docstring). ``filename`` is the first, for a record to name the task by."""

    filenames: ClassVar[tuple[str, ...]]

    @property
    def filename(self) -> str:  # type: ignore[override]
        return self.filenames[0]

    def files(self, notes: dict[str, Any]) -> dict[str, bytes]:
        """File name -> bytes of every output. ``notes`` collects extra provenance."""
        raise NotImplementedError

    def output(self) -> dict[str, StorageTarget]:  # type: ignore[override]
        return {name: StorageTarget(self.event.directory / name) for name in self.filenames}

    def provenance(self) -> dict[str, Any] | None:
        return provenance.read_record(self.output()[self.filename].url)

    def up_to_date(self) -> tuple[bool, str]:
        inputs = functools.cache(self.current_inputs)  # once for all files, only when needed
        for name, target in self.output().items():
            fresh, reason = provenance.check(target.url, inputs, self.settings_used)
            if not fresh:
                return False, f"{name}: {reason}"
        return True, "up to date"

    def run(self) -> None:
        """As Product.run, for each file (retracted events, records, unchanged files kept,
        an up-to-date product kept)."""
        if self.retracted and not self.allow_retracted:
            raise RetractedEvent(
                f"{self.eventid} is retracted: {' + '.join(self.filenames)} not built "
                "(--allow-retracted builds it, marked retracted)"
            )
        if self.kept():
            return
        start = time.monotonic()
        inputs = self.current_inputs()  # before building: a change meanwhile means a rebuild
        used_settings = self.settings_used()
        notes: dict[str, Any] = {"outputs": list(self.filenames)}
        if self.retracted:
            notes["retracted"] = True
        data = self.files(notes)
        for name, target in self.output().items():
            self.commit(target, data[name], inputs, used_settings, notes, start)


class ScatterPlot(MultiFileProduct):
    """scatterplot_lvc-i3.png and .pdf: the GW sky map with every neutrino and its 90% circle
    coloured by dt, and a zoom on the 90% region (llama.render.skyplot)."""

    filenames = ("scatterplot_lvc-i3.png", "scatterplot_lvc-i3.pdf")

    def requires(self) -> dict[str, EventTask]:
        return {**super().requires(), "skymap": self.event_task(GwSkymap)}

    def files(self, notes: dict[str, Any]) -> dict[str, bytes]:
        from llama.io.skymap import read_skymap
        from llama.render.skyplot import render_scatterplot

        skymap = read_skymap(self.input()["skymap"].path, distances=False)  # probability only
        drawn = render_scatterplot(skymap, self.result())
        return {name: drawn[name.rpartition(".")[2]] for name in self.filenames}


class NeutrinoTables(MultiFileProduct):
    """neutrinos_lvc-i3.txt and .tex: the neutrino table as text and as a LaTeX tabular."""

    filenames = ("neutrinos_lvc-i3.txt", "neutrinos_lvc-i3.tex")

    def files(self, notes: dict[str, Any]) -> dict[str, bytes]:
        from llama.render.tables import neutrino_table_latex, neutrino_table_text

        result = self.result()
        text, latex = neutrino_table_text(result), neutrino_table_latex(result)
        return dict(zip(self.filenames, (text.encode(), latex.encode()), strict=True))


class Summary(WithEventState):
    """summary_lvc-i3.pdf: one page with the sky plot, the numbers, flags, the neutrino table
    and the provenance of the significance; PARTIAL RESULT while the neutrino list is
    incomplete, RETRACTED for a retracted event (llama.render.summary)."""

    filename = "summary_lvc-i3.pdf"

    def requires(self) -> dict[str, EventTask]:
        return {**super().requires(), "plot": self.event_task(ScatterPlot)}

    def extra_inputs(self) -> list[Path]:
        """Also the records of the significance and of the neutrino list (shown on the page:
        provenance, and whether the list is complete)."""
        directory = self.event.directory
        records = [provenance.meta_path(directory / cls.filename)
                   for cls in (Significance, NeutrinoList)]
        return super().extra_inputs() + [Path(r) for r in records]

    def current_inputs(self) -> dict[str, dict[str, Any]]:
        """As Product's, but the neutrino list's record counts only by its ``complete`` (it is
        renewed, with a new fetch time, whenever the list is rebuilt)."""
        inputs = super().current_inputs()
        record = self.event.directory / Path(provenance.meta_path(NeutrinoList.filename)).name
        neutrinos = provenance.read_record(self.event.directory / NeutrinoList.filename) or {}
        inputs[record.name] = provenance.input_entry(record, {"complete": neutrinos.get("complete")})
        return provenance.as_json(inputs)

    def build(self, notes: dict[str, Any]) -> bytes:
        from llama.render.summary import SummaryContext, render_summary

        event = self.event
        neutrino_record = provenance.read_record(event.directory / NeutrinoList.filename) or {}
        context = SummaryContext(
            flags=event.flags,
            skymap_info=self.used_info(),
            neutrino_list_complete=neutrino_record.get("complete"),
            significance_record=provenance.read_record(event.directory / Significance.filename),
            significance_file=Significance.filename,
        )
        notes["partial"] = context.partial
        notes["retracted"] = context.retracted
        plot = self.input()["plot"][ScatterPlot.filenames[0]].path
        return render_summary(self.result(), Path(plot).read_bytes(), context)


class GcnNotice(WithEventState):
    """gcn_notice_lvc-i3.json: the IceCube "LVK Nu Track Search" notice (llama.render.gcn).
    It embeds the time it was made (``alert_datetime``); its declared content is the rest."""

    filename = "gcn_notice_lvc-i3.json"

    def build(self, notes: dict[str, Any]) -> str:
        from llama.render.gcn import gcn_notice

        made = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        notice = gcn_notice(self.result(), self.used_info(), self.event.flags["role"], made)
        return storage.json_text(notice)

    def declared_content(self, data: bytes) -> bytes:
        from llama.render.gcn import declared_content

        return storage.json_text(declared_content(json.loads(data))).encode()


class GcnCircular(WithEventState):
    """gcn_circular_lvc-i3.txt: a plain-text GCN circular draft (llama.render.gcn)."""

    filename = "gcn_circular_lvc-i3.txt"

    def build(self, notes: dict[str, Any]) -> str:
        from llama.render.gcn import circular_text

        return circular_text(self.result(), self.used_info())


#: The rendered products, in the order a person would read them.
OUTPUTS: tuple[type[FromSignificance], ...] = (
    ScatterPlot,
    Summary,
    NeutrinoTables,
    GcnNotice,
    GcnCircular,
)
