"""The detection-efficiency plot of an injection campaign (``llama background sensitivity``).

Detection efficiency (fraction of injections with p <= alpha) against the isotropic-equivalent
neutrino emission energy E_iso (erg, log axis), with the expected signal count mu on the top
axis; against mu alone when no energy is known. One series per threshold alpha, with
Clopper-Pearson error bars, in the Okabe-Ito colours with a distinct marker each (colour-blind
safe, readable in grey); a dotted line marks 90% efficiency. Sized for a journal column pair
(6.4 x 4.4 in), drawn once and saved as PNG (200 dpi) and PDF (TrueType fonts, as journals ask),
both with deterministic bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from llama.render.skyplot import figure_bytes
from llama.science.efficiency import Efficiency

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Figure size (inches) and PNG resolution (dots per inch).
FIGSIZE = (6.4, 4.4)
DPI = 200
#: Okabe & Ito (2008) colour-blind-safe colours and one marker per series.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Efficiency of the reference line.
REFERENCE = 0.9
#: Log-axis margin: the x range spans the points widened by this factor on each side.
MARGIN = 1.6


def sensitivity_figure(eff: Efficiency, neutrinos_per_erg: float | None, title: str) -> Figure:
    """The plot (see the module docstring); ``neutrinos_per_erg`` converts mu to E_iso = mu /
    neutrinos_per_erg (erg), None plots against mu."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    x = eff.mu if neutrinos_per_erg is None else eff.mu / neutrinos_per_erg
    for n, i in enumerate(np.argsort(-eff.thresholds)):  # legend top to bottom = curves
        value = eff.efficiency[i]
        ax.errorbar(x, value, yerr=[value - eff.low[i], eff.high[i] - value],
                    color=COLOURS[n % len(COLOURS)], marker=MARKERS[n % len(MARKERS)],
                    markersize=5, linewidth=1.3, elinewidth=1.0, capsize=2.5,
                    label=rf"$p \leq {eff.thresholds[i]:g}$")
    ax.axhline(REFERENCE, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
    ax.text(1.01, REFERENCE, f"{REFERENCE:.0%}", transform=ax.get_yaxis_transform(),
            ha="left", va="center", fontsize=8, color="0.35")
    ax.set_xscale("log")
    ax.set_xlim(x.min() / MARGIN, x.max() * MARGIN)
    span = np.log10(x.max() / x.min()) + 2 * np.log10(MARGIN)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(which="major", color="0.88", linewidth=0.6)
    ax.grid(which="minor", axis="x", color="0.94", linewidth=0.4)
    ax.set_axisbelow(True)
    ax.set_ylabel("Detection efficiency")
    mu_label = r"Expected detected signal neutrinos $\mu$"
    if neutrinos_per_erg is None:
        ax.set_xlabel(mu_label)
        log_ticks(ax.xaxis, span, plain_label)
    else:
        ax.set_xlabel(r"Neutrino emission energy $E_{\nu,\mathrm{iso}}$ [erg]")
        log_ticks(ax.xaxis, span, power_label)
        top = ax.secondary_xaxis("top", functions=(lambda e: e * neutrinos_per_erg,
                                                   lambda mu: mu / neutrinos_per_erg))
        top.set_xlabel(mu_label)
        log_ticks(top.xaxis, span, plain_label)
    n = np.unique(eff.n_trials)
    per_point = f"{n[0]}" if n.size == 1 else f"{n.min()}-{n.max()}"
    ax.legend(loc="upper left", frameon=True, framealpha=0.9, edgecolor="0.8", fontsize=9,
              title=f"{per_point} injections per point\n{eff.confidence:.0%} CL (Clopper-Pearson)",
              title_fontsize=8)
    ax.set_title(title, fontsize=9, color="0.25")
    return fig


def log_ticks(axis, decades: float, label) -> None:
    """Labelled ticks at 1, 2 and 5 x 10^n on a log axis spanning under 2 ``decades`` (at
    10^n otherwise), unlabelled minor ticks between; ``label`` formats a tick value."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: label(value)))
    axis.set_minor_locator(LogLocator(subs=np.arange(2.0, 10.0)))
    axis.set_minor_formatter(NullFormatter())


def power_label(value: float) -> str:
    """2e50 -> 2x10^50 (mathtext); 1e51 -> 10^51."""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = round(value / 10.0**exponent, 6)
    power = f"10^{{{exponent}}}"
    return f"${power}$" if mantissa == 1 else rf"${mantissa:g}\times{power}$"


def plain_label(value: float) -> str:
    """0.5 -> '0.5', 20 -> '20'."""
    return f"{value:g}"


def render_sensitivity(eff: Efficiency, neutrinos_per_erg: float | None, title: str
                       ) -> dict[str, bytes]:
    """The plot drawn once and saved as ``{"png": bytes, "pdf": bytes}``."""
    import matplotlib as mpl

    fig = sensitivity_figure(eff, neutrinos_per_erg, title)
    with mpl.rc_context({"pdf.fonttype": 42}):
        return {form: figure_bytes(fig, form, DPI) for form in ("png", "pdf")}
