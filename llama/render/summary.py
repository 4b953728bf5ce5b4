"""The one-page summary PDF of an event, for the on-call astronomer.

One A4 page: a banner (PARTIAL RESULT while the neutrino list is incomplete, RETRACTED for a
retracted event), the sky plot, the numbers (odds ratio, population p-value with its background
size and key, the event-specific p-value when computed, joint FAR; "n/a" where the result holds
none), the GW trigger, the event's flags, the neutrino table and the provenance of the
significance (llama version, image, host, time, input checksums). Deterministic bytes: no
creation date in the file, everything shown comes from the inputs.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llama.render.result import NA, Result, fmt
from llama.render.skyplot import PDF_METADATA
from llama.render.tables import neutrino_table_text

#: A4 portrait, inches.
PAGE = (8.27, 11.69)
#: Rows of the neutrino table shown on the page (the rest are counted).
MAX_TABLE_ROWS = 18
#: Characters per line of the result block (longer lines wrap, indented).
WIDTH = 110
#: Characters of a sha256 shown.
SHA_CHARS = 12


@dataclass(frozen=True)
class SummaryContext:
    """What the page shows besides the result: the event's state and the provenance record of
    the significance (llama.provenance layout), from the event directory."""

    flags: Mapping[str, Any] = field(default_factory=dict)
    skymap_info: Mapping[str, Any] = field(default_factory=dict)
    neutrino_list_complete: bool | None = None
    significance_record: Mapping[str, Any] | None = None
    significance_file: str = ""

    @property
    def partial(self) -> bool:
        """True while the neutrino list is not known to be complete."""
        return self.neutrino_list_complete is not True

    @property
    def retracted(self) -> bool:
        return bool(self.flags.get("retracted") or self.skymap_info.get("retracted"))


def banner(context: SummaryContext) -> str | None:
    """The status banner: RETRACTED, PARTIAL RESULT, both, or None."""
    words = []
    if context.retracted:
        words.append("RETRACTED")
    if context.partial:
        words.append("PARTIAL RESULT (neutrino list incomplete)")
    return " / ".join(words) or None


def numbers_text(result: Result, context: SummaryContext) -> str:
    """The result block: odds, p-values, FAR, GW trigger, flags (plain text lines)."""
    info = context.skymap_info
    if result.p_value is None:
        population = f"{NA} (no background population {result.population_key or ''})".rstrip()
    else:
        population = (f"{fmt(result.p_value)}  (N_bg = {result.n_background}, "
                      f"{result.population_key})")
    distance = "none (Burst: distance integrated out)" if result.burst else (
        f"{fmt(result.distance_mpc, '.1f')} Mpc")
    flags = "  ".join(f"{k}={v}" for k, v in sorted(context.flags.items())) or NA
    lines = [
        f"search:               {result.search or NA}",
        f"odds ratio:           {fmt(result.odds_ratio, '.4g')}",
        f"p-value (population): {population}",
        *([f"                      ({result.p_value_note})"] if result.p_value_note else []),
        f"p-value (event):      {fmt(result.event_specific_p_value)}",
        f"joint FAR:            {fmt(result.far)}{'' if result.far is None else ' Hz'}",
        f"GW time:              {result.event_time_iso or NA} UTC",
        f"GW alert:             {info.get('alert_type', NA)}  pipeline {info.get('pipeline', NA)}"
        f"  group {info.get('group', NA)}  FAR {fmt(info.get('far'))} Hz",
        f"instruments:          {','.join(info.get('instruments') or []) or NA}"
        f"   distance: {distance}",
        f"neutrinos in window:  {len(result.neutrinos)}  (list complete: "
        f"{'yes' if context.neutrino_list_complete else 'NO'})",
        f"flags:                {flags}",
    ]
    return "\n".join(textwrap.fill(line, WIDTH, subsequent_indent=" " * 22) for line in lines)


def provenance_text(context: SummaryContext) -> str:
    """How the significance was made: version, image, host, time and input checksums."""
    record = context.significance_record
    if not record:
        return f"provenance of {context.significance_file or 'the significance'}: no record"
    lines = [
        f"{record.get('product', context.significance_file)}  sha256 "
        f"{str(record.get('sha256', NA))[:SHA_CHARS]}  llama {record.get('llama_version', NA)}"
        f"  python {record.get('python', NA)}",
        f"image {record.get('image') or NA}  host {record.get('host', NA)}"
        f"  finished {record.get('finished_utc', NA)}  wall {fmt(record.get('wall_time_s'), '.2f')} s",
    ]
    for name, entry in sorted((record.get("inputs") or {}).items()):
        digest = entry.get("sha256", NA) if isinstance(entry, dict) else NA
        lines.append(f"  input {name}  sha256 {str(digest)[:SHA_CHARS]}")
    return "\n".join(lines)


def _table_text(result: Result) -> str:
    lines = neutrino_table_text(result).splitlines()
    head, rows, note = lines[:2], lines[2:-1], lines[-1]
    if len(rows) > MAX_TABLE_ROWS:
        rows = rows[:MAX_TABLE_ROWS] + [f"... {len(rows) - MAX_TABLE_ROWS} more neutrinos"]
    return "\n".join([*head, *rows, note])


def render_summary(result: Result, plot_png: bytes, context: SummaryContext) -> bytes:
    """The one-page summary as PDF bytes (see the module docstring)."""
    import matplotlib.image as mpimg
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    fig.text(0.05, 0.965, f"LLAMA joint GW + neutrino result: {result.eventid}",
             fontsize=15, weight="bold", va="top")
    status = banner(context)
    if status:
        fig.text(0.5, 0.925, status, fontsize=14, weight="bold", ha="center", va="top",
                 color="white", bbox={"facecolor": "black", "edgecolor": "black", "pad": 6})
    plot = fig.add_axes([0.03, 0.62, 0.94, 0.30])
    plot.imshow(mpimg.imread(io.BytesIO(plot_png), format="png"))
    plot.set_axis_off()
    mono = {"family": "monospace", "va": "top"}
    fig.text(0.05, 0.62, numbers_text(result, context), fontsize=8.5, **mono)
    fig.text(0.05, 0.45, "Neutrinos", fontsize=10, weight="bold", va="top")
    fig.text(0.05, 0.435, _table_text(result), fontsize=6.8, **mono)
    fig.text(0.05, 0.2, "Provenance", fontsize=10, weight="bold", va="top")
    fig.text(0.05, 0.185, provenance_text(context), fontsize=6.2, **mono)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf", metadata=PDF_METADATA)
    return buffer.getvalue()
