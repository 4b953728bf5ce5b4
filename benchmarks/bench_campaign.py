"""A 200,000-trial background campaign through the CLI, in exact and fast mode, validated.

What a campaign operator runs, as written: ``llama background run --jobs 8`` on the local
executor over real sky maps from ../shared/data and simulated BAYESTAR maps, ``llama background
table`` to collate, then checks:

* collation is exact: every job's rows, no duplicate (job, trial), the table's sources are the
  job files' sha256;
* calibration (SCIENCE.md section 6): jobs 0..3 are the background population, the p-values of
  jobs 4..7 against it are uniform. The reported p = (1 + #(O_bg >= O)) / (1 + N) is
  conservative where odds tie, so the KS test is on the tie-randomised p-value; the reported
  one must satisfy P(p <= alpha) <= alpha;
* injections of mu = 3 signal neutrinos on the well-localised real maps (90% area below
  100 deg2): the fraction reaching p < 0.01 against the same map's background trials (the
  calibration test asserts >= 90% with 1,000 background trials per map).

Wall and CPU times of every command are printed, so the note can state them.

    python benchmarks/bench_campaign.py --simulated /work/simulated_maps [--trials 25000]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from llama.background.campaign import read_table
from llama.background.simulate import credible_area_deg2
from llama.io.skymap import read_skymap

REAL_MAPS = ("S251112cm_bayestar.multiorder.fits", "MS181101ab_userguide_bayestar.multiorder.fits",
             "MS220722v_bayestar.multiorder.fits", "GW190814_PublicationSamples.multiorder.fits",
             "GW190425_S190425z_bayestar.fits.gz")
WELL_LOCALISED_DEG2 = 100.0
JOBS = 8
HELD_OUT = 4  # jobs >= HELD_OUT are the tested half


def llama(*argv: str) -> tuple[float, float]:
    """Run ``llama ARGV`` (as a user would); (wall s, CPU s of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "llama.cli.main", *argv], capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"llama {' '.join(argv[:2])} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tie_randomised(odds: np.ndarray, background: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(reported p, tie-randomised p) of every odds against a sorted background."""
    right = np.searchsorted(background, odds, side="right")
    left = np.searchsorted(background, odds, side="left")
    above = background.size - right
    reported = (1 + background.size - left) / (background.size + 1)
    randomised = (above + rng.uniform(size=odds.size) * (right - left + 1)) / (background.size + 1)
    return reported, randomised


def check_collation(table, files: list[Path], trials: int) -> str:
    jobs, trial = table.columns["job"], table.columns["trial"]
    assert len(table) == JOBS * trials, len(table)
    assert np.unique(jobs.astype(np.int64) * trials + trial).size == len(table)
    expected = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert {Path(k).name: v for k, v in table.sources.items()} == \
        {Path(k).name: v for k, v in expected.items()}
    return f"{len(table)} rows from {len(files)} jobs, unique (job, trial), sources' sha256 match"


def calibration(table, rng) -> list[str]:
    odds, jobs = table.columns["odds"], table.columns["job"]
    background = np.sort(odds[jobs < HELD_OUT])
    reported, randomised = tie_randomised(odds[jobs >= HELD_OUT], background, rng)
    ks = stats.kstest(randomised, "uniform")
    lines = [f"  KS of {randomised.size} held-out tie-randomised p-values against "
             f"{background.size} background trials: D = {ks.statistic:.4f}, p = {ks.pvalue:.3f}"
             f" ({'uniform' if ks.pvalue > 0.01 else 'NOT uniform'} at 0.01)"]
    for alpha in (0.001, 0.01, 0.1, 0.5):
        rate = np.mean(reported <= alpha)
        sigma = np.sqrt(alpha * (1 - alpha) / reported.size)
        lines.append(f"  P(reported p <= {alpha:g}) = {rate:.5f} ({(rate - alpha) / sigma:+.1f} "
                     "sigma)")
    return lines


def injections(table, injected, well: list[str], maps: list[str], rng) -> list[str]:
    lines = []
    for m_inj, name in enumerate(well):
        m_bg = maps.index(name)
        background = np.sort(table.columns["odds"][table.columns["skymap"] == m_bg])
        odds = injected.columns["odds"][injected.columns["skymap"] == m_inj]
        reported, _ = tie_randomised(odds, background, rng)
        rate = np.mean(reported < 0.01)
        low, high = stats.binomtest(int(np.sum(reported < 0.01)), odds.size).proportion_ci()
        lines.append(f"  {Path(name).name}: {rate:.1%} of {odds.size} mu = 3 injections reach "
                     f"p < 0.01 (95% CI {low:.1%}-{high:.1%}; background {background.size})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--simulated", type=Path, required=True,
                        help="directory of `llama background simulate` groups")
    parser.add_argument("--per-group", type=int, default=2, help="simulated maps per group")
    parser.add_argument("--trials", type=int, default=25000, help="trials per job (8 jobs)")
    parser.add_argument("--inject-trials", type=int, default=2000, help="injection trials per job")
    parser.add_argument("--modes", nargs="+", default=["exact", "fast"])
    parser.add_argument("--work", type=Path, default=Path("campaign-bench"))
    args = parser.parse_args()

    maps = [str(args.shared / "gw_skymaps" / name) for name in REAL_MAPS]
    for group in sorted(glob.glob(str(args.simulated / "*" / "manifest.json"))):
        maps += sorted(glob.glob(str(Path(group).parent / "*.fits")))[: args.per_group]
    well = [m for m in maps[: len(REAL_MAPS)]
            if credible_area_deg2(read_skymap(m), 0.9) < WELL_LOCALISED_DEG2]
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "maps.txt").write_text("\n".join(maps) + "\n")
    (args.work / "well.txt").write_text("\n".join(well) + "\n")
    print(f"{len(maps)} sky maps ({len(REAL_MAPS)} real, {len(maps) - len(REAL_MAPS)} simulated);"
          f" {JOBS} jobs x {args.trials} trials; injections on {', '.join(Path(m).name for m in well)}")
    rng = np.random.default_rng(20261130)
    for mode in args.modes:
        out = args.work / mode
        wall, cpu_s = llama("background", "run", "--skymaps", str(args.work / "maps.txt"),
                            "--trials", str(args.trials), "--seed", "2026", "--out", str(out),
                            "--jobs", str(JOBS), "--mode", mode)
        print(f"[{mode}] background run: {JOBS * args.trials} trials in {wall:.0f} s wall, "
              f"{cpu_s:.0f} s CPU ({JOBS * args.trials / cpu_s:.0f} trials per CPU-second, "
              "map reading and setup included)")
        files = sorted(out.glob("job-*.h5"))
        wall, _ = llama("background", "table", *map(str, files), "-o", str(args.work / f"{mode}.h5"))
        table = read_table(str(args.work / f"{mode}.h5"))
        print(f"[{mode}] table: {check_collation(table, files, args.trials)} ({wall:.1f} s)")
        print(f"[{mode}] calibration:")
        print("\n".join(calibration(table, rng)))
        inj = args.work / f"{mode}-mu3"
        wall, cpu_s = llama("background", "run", "--skymaps", str(args.work / "well.txt"),
                            "--trials", str(args.inject_trials), "--seed", "2027", "--out",
                            str(inj), "--jobs", "2", "--mode", mode, "--inject", "3")
        llama("background", "table", *map(str, sorted(inj.glob("job-*.h5"))), "-o",
              str(args.work / f"{mode}-mu3.h5"))
        injected = read_table(str(args.work / f"{mode}-mu3.h5"))
        print(f"[{mode}] injections ({2 * args.inject_trials} trials, {wall:.0f} s wall):")
        print("\n".join(injections(table, injected, well, maps, rng)))


if __name__ == "__main__":
    main()
