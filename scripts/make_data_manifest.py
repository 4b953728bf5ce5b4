#!/usr/bin/env python3
"""Regenerate llama/data/datasets.json (the manifest of ``llama data fetch``) from real files.

    python3 scripts/make_data_manifest.py [SHARED_DATA_DIR]     (default ../shared/data)

For every file listed in DATASETS below, the size and sha256 are measured on the real file in
SHARED_DATA_DIR (and checked against its SHA256SUMS); the download URL is the immutable
raw.githubusercontent.com URL of the commit that README.md names as the one that last changed
the file (so the bytes behind the URL are exactly the bytes measured). Nothing is typed in by
hand except which files form which data set.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

IC10 = "icecube/icecube_10year_ps"
IC10_SEASONS_UPTIME = ["IC40", "IC59", "IC79", "IC86_I", "IC86_II", "IC86_III", "IC86_IV",
                       "IC86_V", "IC86_VI", "IC86_VII"]

# name -> (description, upstream release, {path in data set: path under shared/data})
DATASETS: dict[str, tuple[str, str, dict[str, str]]] = {
    "icecube-10yr-ps": (
        "IceCube 10-year point-source track data release 2008-2018 (partial: IC40 events, "
        "effective areas IC40..IC86_II, uptime for all 10 seasons, the release readme); "
        "the layout of the release (events/, irfs/, uptime/)",
        "IceCube data release 20210126_PS-IC40-IC86_VII, DOI 10.21234/sxvs-mt83 "
        "(copy from github.com/icecube/PSLab_PS_analysis data_release/)",
        {
            "readme.txt": f"{IC10}/readme.txt",
            "events/IC40_exp.csv": f"{IC10}/events/IC40_exp.csv",
            **{f"irfs/{s}_effectiveArea.csv": f"{IC10}/irfs/{s}_effectiveArea.csv"
               for s in ["IC40", "IC59", "IC79", "IC86_I", "IC86_II"]},
            **{f"uptime/{s}_exp.csv": f"{IC10}/uptime/{s}_exp.csv" for s in IC10_SEASONS_UPTIME},
        },
    ),
    "neutrino-background": (
        "Input of the neutrino background sample (SCIENCE.md section 3): the IC40 season of the "
        "IceCube 10-year point-source release, events and uptime; build the sample with "
        "'llama neutrino-background --release $(llama data path neutrino-background)'",
        "IceCube data release 20210126_PS-IC40-IC86_VII, DOI 10.21234/sxvs-mt83 (IC40 season)",
        {
            "events/IC40_exp.csv": f"{IC10}/events/IC40_exp.csv",
            "uptime/IC40_exp.csv": f"{IC10}/uptime/IC40_exp.csv",
        },
    ),
    "gwtc-skymaps": (
        "GWTC sky-map releases with distance layers: GW170817 (GWTC-1, flat NSIDE 1024) and "
        "GW190814 (GWTC-2, multi-order)",
        "LIGO DCC P1800381 (GWTC-1) and the LVK GWTC-2 sky-map release "
        "(copies from github.com/FRBs/astropath)",
        {
            "GW170817_skymap.fits.gz": "gw_skymaps/GW170817_skymap.fits.gz",
            "GW190814_PublicationSamples.multiorder.fits":
                "gw_skymaps/GW190814_PublicationSamples.multiorder.fits",
        },
    ),
    "lvk-alert-skymaps": (
        "Public low-latency LVK alert sky maps: GW150914 BAYESTAR, S190425z BAYESTAR, "
        "S190814bv LALInference, S251112cm BAYESTAR (O4c, multi-order)",
        "GraceDB public superevents / LIGO DCC P1500227",
        {
            "GW150914_bayestar_gstlal_C01.fits.gz": "gw_skymaps/GW150914_bayestar_gstlal_C01.fits.gz",
            "GW190425_S190425z_bayestar.fits.gz": "gw_skymaps/GW190425_S190425z_bayestar.fits.gz",
            "S190814bv_5_LALInference.v1.fits.gz": "gw_skymaps/S190814bv_5_LALInference.v1.fits.gz",
            "S251112cm_bayestar.multiorder.fits": "gw_skymaps/S251112cm_bayestar.multiorder.fits",
        },
    ),
    "icecat1": (
        "IceCat-1: the IceCube catalogue of 348 Gold/Bronze alert tracks 2011-2023 (CSV)",
        "Harvard Dataverse doi:10.7910/DVN/SCRUCD, arXiv:2304.01174 "
        "(copy from github.com/robertdstein/mma_school_24_neutrinos)",
        {"IceCube_Gold_Bronze_Tracks.csv": "icecube/icecat1/IceCube_Gold_Bronze_Tracks.csv"},
    ),
}

_SOURCE = re.compile(
    r"- Source: github\.com/(?P<repo>[^ ]+) `(?P<path>[^`]+)` \(snapshot HEAD (?P<head>[0-9a-f]{40})"
    r".*?file last changed in (?P<commit>[0-9a-f]{40})"
)


def provenance(readme: str) -> dict[str, dict[str, str]]:
    """shared/data path -> {repo, path, commit} from README.md's '### `path`' sections."""
    out: dict[str, dict[str, str]] = {}
    for section in re.split(r"^### ", readme, flags=re.M)[1:]:
        head = re.match(r"`([^`]+)`", section)
        match = _SOURCE.search(section)
        if head and match:
            out[head.group(1)] = match.groupdict()
    return out


def main(argv: list[str]) -> int:
    shared = Path(argv[1]) if len(argv) > 1 else REPO.parent / "shared" / "data"
    sums = {}
    for line in (shared / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*").removeprefix("./")] = digest
    prov = provenance((shared / "README.md").read_text())
    manifest: dict = {
        "format": 1,
        "comment": "Generated by scripts/make_data_manifest.py from the real files; do not edit "
                   "sizes or checksums by hand.",
        "datasets": {},
    }
    for name, (description, upstream, files) in DATASETS.items():
        entries = []
        for rel, src in files.items():
            data = (shared / src).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if sums.get(src) != digest:
                raise SystemExit(f"{src}: sha256 {digest} disagrees with SHA256SUMS")
            p = prov[src]
            url = ("https://raw.githubusercontent.com/"
                   f"{p['repo']}/{p['commit']}/{urllib.parse.quote(p['path'], safe='/')}")
            entries.append({"path": rel, "url": url, "size": len(data), "sha256": digest})
        manifest["datasets"][name] = {"description": description, "upstream": upstream,
                                      "files": entries}
    out = REPO / "llama" / "data" / "datasets.json"
    out.write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(len(d["files"]) for d in manifest["datasets"].values())
    print(f"wrote {out}: {len(manifest['datasets'])} data sets, {total} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
