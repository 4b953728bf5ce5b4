"""The neutrino table of a result, as fixed-width text and as a LaTeX tabular.

Columns: IceCube run_event, dt (s, track minus GW), RA and Dec (deg), sigma and the 90% radius
(deg, 2.146 sigma), energy (GeV), odds ratio and p-value of that neutrino; n/a where unknown.
"""

from __future__ import annotations

from llama.render.result import Result, fmt

#: (header, LaTeX header, cell) per column.
COLUMNS: tuple[tuple[str, str, object], ...] = (
    ("run_event", r"run\_event", lambda n: n.i3event),
    ("dt[s]", r"$\Delta t$ [s]", lambda n: fmt(n.dt, "+.1f")),
    ("RA[deg]", r"RA [$^\circ$]", lambda n: fmt(n.ra, ".2f")),
    ("Dec[deg]", r"Dec [$^\circ$]", lambda n: fmt(n.dec, "+.2f")),
    ("sigma[deg]", r"$\sigma$ [$^\circ$]", lambda n: fmt(n.sigma, ".2f")),
    ("r90[deg]", r"$r_{90}$ [$^\circ$]", lambda n: fmt(n.r90, ".2f")),
    ("E[GeV]", r"$E$ [GeV]", lambda n: fmt(n.energy, ".3g")),
    ("odds", "odds", lambda n: fmt(n.odds_ratio, ".3g")),
    ("p-value", "$p$", lambda n: fmt(n.p_value, ".3g")),
)
NOTE = "dt = neutrino time minus GW time; r90 = 90% containment radius = 2.146 sigma"


def table_rows(result: Result) -> list[list[str]]:
    """The cells of the table, one row per neutrino, in the result's order."""
    return [[cell(n) for _, _, cell in COLUMNS] for n in result.neutrinos]  # type: ignore[operator]


def neutrino_table_text(result: Result) -> str:
    """The neutrino table as aligned plain text (header, rule, rows, note; trailing newline)."""
    header = [name for name, _, _ in COLUMNS]
    rows = table_rows(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    if not rows:
        lines.append("(no neutrinos within the time window)")
    return "\n".join([*lines, NOTE]) + "\n"


_LATEX_SPECIAL = str.maketrans(
    {"\\": r"\textbackslash{}", **{c: "\\" + c for c in "&%$#_{}"}}
)


def _latex_escape(text: str) -> str:
    return text.translate(_LATEX_SPECIAL)


def neutrino_table_latex(result: Result) -> str:
    """The neutrino table as a LaTeX ``tabular`` (booktabs rules) with the note as a caption
    line; cells are escaped, so run_event ids and n/a print as they are."""
    spec = "l" + "r" * (len(COLUMNS) - 1)
    head = " & ".join(latex for _, latex, _ in COLUMNS) + r" \\"
    body = [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in table_rows(result)]
    if not body:
        body = [rf"\multicolumn{{{len(COLUMNS)}}}{{c}}{{no neutrinos within the time window}} \\"]
    note = _latex_escape(NOTE).replace("2.146 sigma", r"2.146\,$\sigma$")
    return "\n".join(
        [
            f"% neutrinos of {_latex_escape(result.eventid)}; {note}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            head,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
        ]
    ) + "\n"

