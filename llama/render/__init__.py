"""Products for people and for peers, rendered from an event's files (no Luigi here).

    result.py    a defensive, read-only view of a significance JSON (SCIENCE.md section 8)
    tables.py    the neutrino table as plain text and as a LaTeX tabular
    skyplot.py   the sky plot: GW map on ligo.skymap's astro Mollweide axes, 50%/90% contours,
                 every neutrino with its 90% circle coloured by dt, a zoomed panel (PNG + PDF)
    summary.py   the one-page summary PDF (plot, table, odds, p-values, FAR, flags, provenance)
    gcn.py       the IceCube "LVK Nu Track Search" GCN notice (JSON) and a circular draft (text)

matplotlib and ligo.skymap are imported inside the functions that draw, so importing
llama.render (and anything on the significance path) stays light.
"""
