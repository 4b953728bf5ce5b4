"""The sky plot of an event: the GW sky map and every neutrino, for people.

Left: the whole sky on ligo.skymap's ``astro hours mollweide`` axes; right: a zoom on the 90%
credible region. The GW probability is drawn in grey, its 50% and 90% credible contours as
solid and dashed black lines; each neutrino is a marker with its 90% containment circle
(2.146 sigma) coloured by dt (neutrino minus GW time, s) with the colour-blind-safe
``plasma`` colour map, so nothing depends on telling red from green. Title: event id and time.

The map is rasterised for display only (NESTED, :data:`DISPLAY_NSIDE` on the whole sky, finer
in the zoom as its radius needs, at most :data:`ZOOM_NSIDE`); the science never sees this copy. Output bytes are
deterministic (no creation date or software version in the files), so a rebuild of the same
inputs gives the same PNG and PDF.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from llama.io.skymap_geometry import SkyMap, rasterize
from llama.render.result import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Display resolution of the whole-sky panel and the finest of the zoom (HEALPix NSIDE).
DISPLAY_NSIDE = 128
ZOOM_NSIDE = 512
#: Zoom pixels per zoom radius (sets the zoom's NSIDE); mean pixel size at NSIDE 1, deg.
ZOOM_PIXELS = 50
MEAN_PIXEL_DEG_NSIDE1 = math.degrees(math.sqrt(4 * math.pi / 12))
#: Figure size (inches) and PNG resolution (dots per inch).
FIGSIZE = (13.0, 5.0)
DPI = 100
#: Colour maps: GW probability (grey) and neutrino dt (colour-blind safe).
MAP_CMAP = "Greys"
DT_CMAP = "plasma"
#: dt colour range, s (the +-500 s window).
DT_RANGE = (-500.0, 500.0)
#: Zoom radius limits, deg.
ZOOM_MIN_DEG, ZOOM_MAX_DEG = 3.0, 60.0
#: No creation date, no software version: same inputs, same bytes.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}


def credible_levels(prob: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest credible level (%) of a region containing it (equal-area
    pixels): the cumulative probability of all pixels at least as probable, x 100."""
    order = np.argsort(prob)[::-1]
    levels = np.empty_like(prob, dtype=float)
    levels[order] = np.cumsum(prob[order]) * 100.0
    return levels


def display_prob(skymap: SkyMap, nside: int) -> np.ndarray:
    """The map's probability per pixel on a flat NESTED grid at ``nside`` (display only): a
    finer flat map sums its children (a reshape), anything else is rasterised
    (llama.io.skymap_geometry.rasterize)."""
    if skymap.nside is not None and skymap.nside >= nside:
        return np.asarray(skymap.prob, float).reshape(-1, (skymap.nside // nside) ** 2).sum(axis=1)
    return rasterize(skymap, nside).prob


def zoom_nside(skymap: SkyMap, radius_deg: float) -> int:
    """The zoom panel's NSIDE: about :data:`ZOOM_PIXELS` pixels per zoom radius (a power of 2),
    never finer than the map itself (its finest order) or :data:`ZOOM_NSIDE`, never coarser
    than :data:`DISPLAY_NSIDE`."""
    native = skymap.nside if skymap.nside is not None else 1 << int(np.max(skymap.order))
    wanted = 1 << math.ceil(math.log2(MEAN_PIXEL_DEG_NSIDE1 * ZOOM_PIXELS / radius_deg))
    return int(np.clip(min(wanted, native, ZOOM_NSIDE), DISPLAY_NSIDE, ZOOM_NSIDE))


def zoom_view(prob: np.ndarray, levels: np.ndarray, nside: int) -> tuple[float, float, float]:
    """(RA, Dec, radius) in deg of the zoom panel: centred on the most probable pixel,
    radius reaching the farthest pixel of the 90% region (x 1.15, within the limits)."""
    from astropy_healpix import healpy as hp

    inside = np.flatnonzero(levels <= 90.0)
    peak = int(np.argmax(prob))
    xyz = np.column_stack(hp.pix2vec(nside, inside, nest=True))
    centre = np.asarray(hp.pix2vec(nside, peak, nest=True))
    reach = np.degrees(np.arccos(np.clip(xyz @ centre, -1.0, 1.0))).max(initial=0.0)
    ra, dec = hp.pix2ang(nside, peak, nest=True, lonlat=True)
    radius = float(np.clip(1.15 * reach + hp.nside2resol(nside, arcmin=True) / 60.0,
                           ZOOM_MIN_DEG, ZOOM_MAX_DEG))
    return float(ra), float(dec), radius


def _draw_map(ax: Any, prob: np.ndarray, levels: np.ndarray) -> None:
    """GW probability (grey, nearest pixel) and its 50%/90% credible contours on astro axes."""
    ax.imshow_hpx((prob, "ICRS"), nested=True, cmap=MAP_CMAP, vmin=0.0, order="nearest-neighbor")
    ax.contour_hpx(
        (levels, "ICRS"),
        nested=True,
        levels=[50.0, 90.0],
        colors="black",
        linestyles=["solid", "dashed"],
        linewidths=[1.0, 1.0],
    )


def _draw_neutrinos(ax: Any, result: Result, norm: Any, cmap: Any) -> None:
    """Each neutrino: a marker and its 90% circle, coloured by dt (grey when unknown)."""
    import astropy.units as u
    from astropy.visualization.wcsaxes import SphericalCircle

    transform = ax.get_transform("world")
    for nu in result.neutrinos:
        colour = "0.5" if nu.dt is None else cmap(norm(nu.dt))
        ax.add_patch(
            SphericalCircle(
                (nu.ra * u.deg, nu.dec * u.deg),
                nu.r90 * u.deg,
                transform=transform,
                edgecolor=colour,
                facecolor="none",
                linewidth=1.5,
            )
        )
    if result.neutrinos:
        ra = np.array([nu.ra for nu in result.neutrinos])
        dec = np.array([nu.dec for nu in result.neutrinos])
        dt = np.array([np.nan if nu.dt is None else nu.dt for nu in result.neutrinos])
        ax.scatter(ra, dec, c=dt, cmap=cmap, norm=norm, marker="X", s=60, edgecolors="black",
                   linewidths=0.6, transform=transform, zorder=5, plotnonfinite=True)


def scatter_figure(skymap: SkyMap, result: Result) -> Figure:
    """The sky-plot figure: whole sky, zoom and a dt colour bar (see the module docstring)."""
    import ligo.skymap.plot  # noqa: F401  (registers the astro projections)
    import matplotlib as mpl
    from astropy.coordinates import SkyCoord
    from matplotlib.figure import Figure

    prob = display_prob(skymap, DISPLAY_NSIDE)
    levels = credible_levels(prob)
    ra0, dec0, radius = zoom_view(prob, levels, DISPLAY_NSIDE)
    nside = zoom_nside(skymap, radius)
    zoom_prob = prob if nside == DISPLAY_NSIDE else display_prob(skymap, nside)
    zoom_levels = levels if nside == DISPLAY_NSIDE else credible_levels(zoom_prob)

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    norm = mpl.colors.Normalize(*DT_RANGE)
    cmap = mpl.colormaps[DT_CMAP]
    sky = fig.add_axes([0.03, 0.08, 0.55, 0.78], projection="astro hours mollweide")
    zoom = fig.add_axes(
        [0.645, 0.13, 0.24, 0.70],
        projection="astro zoom",
        center=SkyCoord(ra0, dec0, unit="deg"),
        radius=f"{radius:.3f} deg",
    )
    for ax, values, contours in ((sky, prob, levels), (zoom, zoom_prob, zoom_levels)):
        ax.grid(color="0.75", linewidth=0.5)
        _draw_map(ax, values, contours)
        _draw_neutrinos(ax, result, norm, cmap)
    zoom.coords[0].set_ticks(number=4)
    zoom.coords[0].set_major_formatter("hh:mm")
    zoom.coords[1].set_major_formatter("dd")
    zoom.coords[0].set_axislabel("RA")
    zoom.coords[1].set_axislabel("Dec")
    zoom.set_title(f"90% region, radius {radius:.1f} deg", fontsize=9)
    bar = fig.add_axes([0.925, 0.18, 0.012, 0.6])
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=bar,
                 label="dt = t(neutrino) - t(GW) [s]")
    when = result.event_time_iso or "time n/a"
    fig.suptitle(
        f"{result.eventid}  {when} UTC   GW 50%/90% credible regions (solid/dashed), "
        f"{len(result.neutrinos)} neutrinos with 90% circles",
        fontsize=11,
    )
    return fig


def figure_bytes(fig: Figure, form: str) -> bytes:
    """``fig`` as deterministic PNG or PDF bytes (``form`` 'png' or 'pdf')."""
    buffer = io.BytesIO()
    metadata = PNG_METADATA if form == "png" else PDF_METADATA
    fig.savefig(buffer, format=form, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def render_scatterplot(skymap: SkyMap, result: Result) -> dict[str, bytes]:
    """The sky plot drawn once and saved as ``{"png": bytes, "pdf": bytes}``."""
    fig = scatter_figure(skymap, result)
    return {form: figure_bytes(fig, form) for form in ("png", "pdf")}
