#!/usr/bin/env python
"""Plot the 90% credible areas and distances of simulated sky-map populations (the manifests
written by llama.background.simulate) beside the real LVK maps in ../shared/data/gw_skymaps.

    scripts/plot_simulated_maps.py SIMULATED_DIR [--real DIR] [-o PNG]

Writes SIMULATED_DIR/simulated_vs_real.png by default: left, 90% area (deg2, log) against
DISTMEAN (Mpc, log) for every map; right, the 90% areas of each group as points with their
median, real maps as stars.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gw_skymaps"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("simulated", type=Path, help="directory holding <group>/manifest.json")
    p.add_argument("--real", type=Path, default=DEFAULT_REAL, help="real sky maps directory")
    p.add_argument("-o", "--output", type=Path, help="PNG (default SIMULATED/simulated_vs_real.png)")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from llama.background.simulate import map_summary, read_manifest

    groups = {}
    for path in sorted(args.simulated.glob("*/manifest.json")):
        manifest = read_manifest(path)
        groups[path.parent.name] = manifest["maps"]
    real = {}
    for path in sorted(args.real.glob("*.fits*")):
        try:
            real[path.name.removesuffix(".gz").removesuffix(".fits")] = map_summary(path)
        except Exception as err:  # noqa: BLE001 - report and go on
            print(f"{path}: skipped ({err})", file=sys.stderr)

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5),
                                      gridspec_kw={"width_ratios": [1.1, 1]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, maps) in enumerate(groups.items()):
        area = np.array([m["area90_deg2"] for m in maps])
        dist = np.array([m["distmean"] for m in maps], dtype=float)
        left.scatter(dist, area, s=14, alpha=0.7, color=colours[k % 10],
                     label=f"{name} ({len(maps)})")
        right.scatter(np.full(area.size, k) + np.linspace(-0.2, 0.2, area.size), area, s=12,
                      alpha=0.7, color=colours[k % 10])
        right.plot([k - 0.3, k + 0.3], [np.median(area)] * 2, color="k", lw=2)
    x_real = len(groups)
    for j, (name, summary) in enumerate(real.items()):
        area = summary["area90_deg2"]
        if summary["distmean"] is not None:
            left.scatter(summary["distmean"], area, marker="*", s=150, color="k",
                         edgecolor="w", zorder=5)
            left.annotate(name, (summary["distmean"], area), fontsize=7,
                          xytext=(4, 4), textcoords="offset points")
        right.scatter(x_real + (j - len(real) / 2) * 0.05, area, marker="*", s=120, color="k")
    left.scatter([], [], marker="*", s=150, color="k", label=f"real LVK maps ({len(real)})")
    left.set(xscale="log", yscale="log", xlabel="DISTMEAN (Mpc)",
             ylabel="90% credible area (deg$^2$)",
             title="Simulated BAYESTAR maps and real maps")
    left.legend(fontsize=8, loc="upper left")
    left.grid(True, which="both", alpha=0.2)
    right.set_xticks(range(len(groups) + 1), [*groups, "real"], rotation=20, fontsize=8)
    right.set(yscale="log", ylabel="90% credible area (deg$^2$)",
              title="90% areas per group (line: median)")
    right.grid(True, which="both", axis="y", alpha=0.2)
    fig.tight_layout()
    out = args.output or args.simulated / "simulated_vs_real.png"
    fig.savefig(out, dpi=110)
    print(out)
    for name, maps in groups.items():
        area = np.array([m["area90_deg2"] for m in maps])
        dist = np.array([m["distmean"] for m in maps], dtype=float)
        print(f"{name}: {len(maps)} maps; area90 median {np.median(area):.0f} deg2 "
              f"[{area.min():.0f}, {area.max():.0f}]; DISTMEAN median {np.median(dist):.0f} Mpc "
              f"[{dist.min():.0f}, {dist.max():.0f}]")
    for name, summary in real.items():
        d = summary["distmean"]
        print(f"real {name}: area90 {summary['area90_deg2']:.0f} deg2, DISTMEAN "
              f"{'none' if d is None else f'{d:.0f} Mpc'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
