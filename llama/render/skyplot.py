"""The sky plot of an event: the GW sky map and every neutrino, for people.

Left: the whole sky on ligo.skymap's ``astro hours mollweide`` axes; right: a zoom on the 90%
credible region. The GW probability is drawn in grey, its 50% and 90% credible contours as
solid and dashed black lines; each neutrino is a marker with its 90% containment circle
(2.146 sigma) coloured by dt (neutrino minus GW time, s) with the colour-blind-safe
``plasma`` colour map, so nothing depends on telling red from green. Title: event id and time.

The map is rasterised for display only (NESTED, :data:`DISPLAY_NSIDE` on the whole sky, finer
in the zoom as its radius needs, at most :data:`ZOOM_NSIDE`); the science never sees this copy.
Each panel samples it every :data:`GRID_STEP` screen pixels: the probability as an image (a
raster in the PDF too), the credible levels (bilinear) for the contours, which stay lines like
the circles and the grid. The figure is built once and saved as PNG and PDF (matplotlib draws
it once per format; the costly parts of a draw, tick labels on the elliptical frame and
mathtext, are avoided: see the tick constants). Output bytes are deterministic (no creation
date or software version in the files), so a rebuild of the same inputs gives the same PNG and
PDF.
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
#: The sky image and the credible levels are sampled every GRID_STEP screen pixels (PNG).
GRID_STEP = 2
#: Tick values on the whole sky, deg: RA every 3 h but not on the 0 h edge of the map (that
#: meridian is the elliptical frame: it "crosses" it at hundreds of sampled points, each made
#: a tick and a label, then hidden as overlapping), Dec every 30 deg but not at the poles. The
#: 12 h meridian and the equator are the frame's inner spines: their ticks are nudged by
#: NUDGE_DEG (a tiny angle that moves a value off a degenerate line) so that astropy does not
#: test each of the spine's 1000 samples as a crossing (a fifth of the render's time); the
#: labels still read 12h and 0.
NUDGE_DEG = 1e-7
SKY_RA_TICKS_DEG = (45.0, 90.0, 135.0, 180.0 + NUDGE_DEG, 225.0, 270.0, 315.0)
SKY_DEC_TICKS_DEG = (-60.0, -30.0, NUDGE_DEG, 30.0, 60.0)
#: RA labels as plain text ("3h", "13h30m"): the default superscripts go through matplotlib's
#: mathtext parser, once per label and output format.
RA_SEPARATOR = ("h", "m", "s")
#: Share of the probability in the least probable pixels that credible_levels does not sort.
LEVEL_TAIL = 0.01
#: Vertices per neutrino 90% circle.
CIRCLE_VERTICES = 100
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
    pixels): the cumulative probability of all pixels at least as probable, x 100. Pixels
    below LEVEL_TAIL / npix each (together less than LEVEL_TAIL of the probability, all above
    the 99% level) are not sorted: they get 100, which moves no 50% or 90% contour."""
    candidates = np.flatnonzero(prob >= LEVEL_TAIL * prob.sum() / prob.size)
    order = candidates[np.argsort(prob[candidates])[::-1]]
    levels = np.full(prob.shape, 100.0)
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


def _sample_grid(ax: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, RA, Dec) of a grid of points every :data:`GRID_STEP` screen pixels over the
    panel (pixel coordinates of the axes; RA, Dec in deg, NaN outside the projection)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x, y = np.meshgrid(np.arange(x0 + GRID_STEP / 2, x1, GRID_STEP),
                       np.arange(y0 + GRID_STEP / 2, y1, GRID_STEP))
    with np.errstate(invalid="ignore"):
        ra, dec = ax.wcs.pixel_to_world_values(x, y)
    return x, y, ra, dec


def _draw_map(ax: Any, prob: np.ndarray, levels: np.ndarray) -> None:
    """GW probability (grey, nearest pixel) and its 50%/90% credible contours (credible
    levels interpolated bilinearly) on astro axes, both sampled on :func:`_sample_grid`: the
    image is a raster in every format, the contours are lines."""
    import astropy.units as u
    from astropy_healpix import HEALPix, npix_to_nside

    x, y, ra, dec = _sample_grid(ax)
    inside = np.isfinite(ra) & np.isfinite(dec)
    lon, lat = ra[inside] * u.deg, dec[inside] * u.deg
    grid = HEALPix(npix_to_nside(prob.size), order="nested")
    image = np.full(x.shape, np.nan)
    image[inside] = prob[grid.lonlat_to_healpix(lon, lat)]
    limits = ax.get_xlim(), ax.get_ylim()
    ax.imshow(np.ma.masked_invalid(image), cmap=MAP_CMAP, vmin=0.0, origin="lower",
              interpolation="nearest", extent=(x[0, 0] - GRID_STEP / 2, x[0, -1] + GRID_STEP / 2,
                                               y[0, 0] - GRID_STEP / 2, y[-1, 0] + GRID_STEP / 2))
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    contour = np.full(x.shape, 100.0)
    contour[inside] = grid.interpolate_bilinear_lonlat(lon, lat, levels)
    ax.contour(x, y, contour, levels=[50.0, 90.0], colors="black",
               linestyles=["solid", "dashed"], linewidths=[1.0, 1.0])


def circle_vertices(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: np.ndarray,
                    n: int = CIRCLE_VERTICES) -> np.ndarray:
    """Closed small circles on the sky: (n_circles, n + 1, 2) of (RA, Dec) in deg, the points
    at ``radius_deg`` from each centre at n bearings (RA continuous around the centre, not
    wrapped at 360)."""
    ra0, dec0, r = (np.radians(np.asarray(a, float))[:, None] for a in (ra_deg, dec_deg, radius_deg))
    bearing = np.linspace(0.0, 2.0 * np.pi, n + 1)[None, :]
    sin_dec = np.sin(dec0) * np.cos(r) + np.cos(dec0) * np.sin(r) * np.cos(bearing)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    ra = ra0 + np.arctan2(np.sin(bearing) * np.sin(r) * np.cos(dec0),
                          np.cos(r) - np.sin(dec0) * sin_dec)
    return np.degrees(np.stack([ra, dec], axis=-1))


def split_at_edge(vertices: np.ndarray, edge_ra_deg: float) -> list[np.ndarray]:
    """Circles (n_circles, n, 2) of (RA, Dec) in deg as lines that do not cross the meridian
    ``edge_ra_deg`` (the edge of an all-sky map): RA wrapped to within NUDGE_DEG inside
    (edge, edge + 360) (a point on the edge itself could be drawn on either side), each circle
    cut where it jumps across. Returns the pieces, circle by circle."""
    east = np.clip((vertices[..., 0] - edge_ra_deg) % 360.0, NUDGE_DEG, 360.0 - NUDGE_DEG)
    ra = east + edge_ra_deg
    pieces = []
    for circle_ra, circle in zip(ra, vertices, strict=True):
        cuts = np.flatnonzero(np.abs(np.diff(circle_ra)) > 180.0) + 1
        pieces.append(np.split(np.column_stack([circle_ra, circle[:, 1]]), cuts))
    return pieces


def _draw_neutrinos(ax: Any, result: Result, norm: Any, cmap: Any,
                    edge_ra_deg: float | None = None) -> None:
    """Each neutrino: a marker and its 90% circle, coloured by dt (grey when unknown); on an
    all-sky map (``edge_ra_deg`` its edge meridian) circles are cut at the edge."""
    from matplotlib.collections import LineCollection

    if not result.neutrinos:
        return
    transform = ax.get_transform("world")
    ra = np.array([nu.ra for nu in result.neutrinos])
    dec = np.array([nu.dec for nu in result.neutrinos])
    r90 = np.array([nu.r90 for nu in result.neutrinos])
    dt = np.array([np.nan if nu.dt is None else nu.dt for nu in result.neutrinos])
    colours = [(0.5, 0.5, 0.5, 1.0) if np.isnan(t) else cmap(norm(t)) for t in dt]
    circles = circle_vertices(ra, dec, r90)
    if edge_ra_deg is None:
        lines, line_colours = list(circles), colours
    else:
        pieces = split_at_edge(circles, edge_ra_deg)
        lines = [piece for circle in pieces for piece in circle]
        line_colours = [c for c, circle in zip(colours, pieces, strict=True) for _ in circle]
    ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=1.5,
                                     transform=transform), autolim=False)
    ax.scatter(ra, dec, c=dt, cmap=cmap, norm=norm, marker="X", s=60, edgecolors="black",
               linewidths=0.6, transform=transform, zorder=5, plotnonfinite=True)


def scatter_figure(skymap: SkyMap, result: Result) -> Figure:
    """The sky-plot figure: whole sky, zoom and a dt colour bar (see the module docstring)."""
    import astropy.units as u
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
    sky.coords[0].set_ticks(values=np.array(SKY_RA_TICKS_DEG) * u.deg)
    sky.coords[1].set_ticks(values=np.array(SKY_DEC_TICKS_DEG) * u.deg)
    sky.coords[0].set_major_formatter("hh")
    sky.coords[1].set_major_formatter("dd")
    for ax in (sky, zoom):
        ax.coords[0].set_separator(RA_SEPARATOR)
    edges = (float(sky.wcs.wcs.crval[0]) + 180.0, None)  # the all-sky map's edge meridian
    for ax, values, contours, edge in zip((sky, zoom), (prob, zoom_prob),
                                          (levels, zoom_levels), edges, strict=True):
        ax.grid(color="0.75", linewidth=0.5)
        _draw_map(ax, values, contours)
        _draw_neutrinos(ax, result, norm, cmap, edge)
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


def figure_bytes(fig: Figure, form: str, dpi: float = DPI) -> bytes:
    """``fig`` as deterministic PNG or PDF bytes (``form`` 'png' or 'pdf'; ``dpi``: PNG
    resolution, dots per inch)."""
    buffer = io.BytesIO()
    metadata = PNG_METADATA if form == "png" else PDF_METADATA
    fig.savefig(buffer, format=form, dpi=dpi, metadata=metadata)
    return buffer.getvalue()


def render_scatterplot(skymap: SkyMap, result: Result) -> dict[str, bytes]:
    """The sky plot drawn once and saved as ``{"png": bytes, "pdf": bytes}``."""
    fig = scatter_figure(skymap, result)
    return {form: figure_bytes(fig, form) for form in ("png", "pdf")}
