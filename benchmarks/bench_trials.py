"""Background trials per second per core: the batched engine (exact and fast modes) against a
per-trial loop over the odds functions (what the engine replaced), side by side in one run.

For a real multi-order map (S251112cm) and the flat NSIDE-1024 GW170817 map, both searches:
* the per-trial loop: the same trials' neutrino lists, one ``odds.subthreshold``/``odds.opa``
  call each (``--loop-trials`` of them);
* exact mode (``--trials``, after a 1,000-trial warm-up on the map, timed apart): checks that
  its odds equal the loop's to floating-point precision;
* fast mode (``--fast-trials``, the first ``--trials`` of them the same trials as exact mode's):
  trials per second after its one-time setup per map (timed apart: computing the smoothed
  grids into an empty cache, and loading them from the cache, as every later job does), odds
  error against exact
  mode (median and 99th percentile of |O_fast / O_exact - 1|, over all trials and over the 10%
  with the largest exact odds);
* p-values at the exact population's 10%, 1% and 0.1% odds thresholds from independent
  exact and fast populations (``--agreement-trials`` each), in binomial standard errors;
* the wall time of ``llama significance --trials 100000`` (fast mode, start-up included);
then a collated campaign table (``--table-trials`` subthreshold trials in 4 jobs) for bytes
per trial, and the process's peak RSS. CPU time (process_time) is reported, so the figures
are per core.

    python benchmarks/bench_trials.py [--shared ../shared/data] [--trials 10000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import llama.cli.main
from llama.background import trials as trials_mod
from llama.background.campaign import Campaign, collate, run_job, write_table
from llama.config import Settings
from llama.io.background_sample import default_background_sample
from llama.io.skymap import read_skymap
from llama.io.storage import local_path
from llama.io.tables import load_model
from llama.science import odds
from llama.science.pvalue import p_value
from llama.significance import make_trigger

MAPS = {"S251112cm multi-order": "S251112cm_bayestar.multiorder.fits",
        "GW170817 flat NSIDE 1024": "GW170817_skymap.fits.gz"}
TARGETS = {"exact": 2000.0, "fast": 100000.0}


def cpu(function, *args, **kwargs):
    """(CPU seconds, result) of one call."""
    start = time.process_time()
    result = function(*args, **kwargs)
    return time.process_time() - start, result


def loop(function, skymap, batch, trigger, model) -> np.ndarray:
    """The odds of every trial of a batch, one odds-function call per trial."""
    return np.array([function(skymap, batch.neutrino_list(k), trigger, model).odds_ratio
                     for k in range(batch.n_trials)])


def bench(label, path, model, sample, args):
    skymap = read_skymap(path)
    trigger = make_trigger(skymap, 60000.0, 12.0, ["H1", "L1", "V1"], 0.5)
    build_s, _ = cpu(trials_mod.sky_function, "fast", skymap, model, sample)  # fills the cache
    load_s, _ = cpu(trials_mod.sky_function, "fast", skymap, model, sample)  # what a job pays
    rows = []
    for search in ("subthreshold", "opa"):
        function = odds.subthreshold if search == "subthreshold" else odds.opa
        generator = trials_mod.TrialGenerator(model, sample, trigger)
        batch = generator.batch(np.random.default_rng(11), skymap, args.loop_trials)
        loop_s, loop_odds = cpu(loop, function, skymap, batch, trigger, model)
        engine = trials_mod.evaluate_batch(skymap, batch, trigger, model, search)[0]
        same = np.max(np.abs(engine - loop_odds) / np.maximum(np.abs(loop_odds), 1e-300))
        warm_s, _ = cpu(trials_mod.run_trials, skymap, trigger, model, sample, 1000, 99, search,
                        progress=False, mode="exact")  # the map's value tables, built once
        exact_s, exact = cpu(trials_mod.run_trials, skymap, trigger, model, sample, args.trials,
                             5, search, progress=False, mode="exact")
        fast_s, fast = cpu(trials_mod.run_trials, skymap, trigger, model, sample,
                           args.fast_trials, 5, search, progress=False, mode="fast")
        first = fast.odds[: args.trials]  # the same trials as the exact run (whole batches)
        both = exact.odds > 0
        error = np.abs(first[both] / exact.odds[both] - 1.0)
        top = exact.odds[both] >= np.quantile(exact.odds[both], 0.9)
        rows.append((label, search, args.loop_trials / loop_s, warm_s, args.trials / exact_s,
                     args.fast_trials / (fast_s - load_s), build_s, load_s, same, np.median(error),
                     np.quantile(error, 0.99), np.median(error[top]), np.quantile(error[top], 0.99)))
    return rows


def agreement(path, model, sample, n_trials):
    """p-values of the exact population's 10%, 1% and 0.1% odds thresholds in both modes."""
    skymap = read_skymap(path)
    trigger = make_trigger(skymap, 60000.0, 12.0, ["H1", "L1", "V1"], 0.5)
    exact = trials_mod.run_trials(skymap, trigger, model, sample, n_trials, 21, progress=False)
    fast = trials_mod.run_trials(skymap, trigger, model, sample, n_trials, 22, progress=False,
                                 mode="fast")  # independent trials
    lines = []
    for p in (0.1, 0.01, 0.001):
        threshold = np.quantile(exact.odds, 1.0 - p)
        p_exact = p_value(threshold, np.sort(exact.odds))
        p_fast = p_value(threshold, np.sort(fast.odds))
        error = np.sqrt(p_exact * (1 - p_exact) / n_trials) * np.sqrt(2.0)
        lines.append(f"  p = {p:<6g} odds >= {threshold:.3g}: exact {p_exact:.5f}, fast {p_fast:.5f}"
                     f", difference {abs(p_fast - p_exact) / error:.1f} sigma (binomial, "
                     f"{n_trials} trials each)")
    return lines


def significance_wall_time(shared: Path, n_trials: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `llama significance --trials N` on S251112cm, start-up included,
    with an empty cache (as for a new event's map)."""
    command = [sys.executable, "-m", "llama.cli.main", "significance", "--skymap",
               str(shared / "gw_skymaps" / "S251112cm_bayestar.multiorder.fits"), "--neutrinos",
               str(shared / "icecube" / "alerts_json" / "acme_tutorials_derived"
                   / "icecube_None_2025-11-12T15-18-45.json"),
               "--event-time", "1446995943.363", "--graceid", "S251112cm",
               "--trials", str(n_trials)]
    cold = {**os.environ, "LLAMA_CACHE_DIR": tempfile.mkdtemp(prefix="bench-cold-")}  # a new map
    start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, capture_output=True, env=cold)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return time.perf_counter() - start, cpu_s


def bytes_per_trial(path, n_trials) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        campaign = Campaign((str(path),), seed=3, settings=Settings(), mode="fast")
        urls = [run_job(campaign, job, n_trials // 4, tmp) for job in range(4)]
        table = Path(local_path(write_table(collate(urls), f"{tmp}/table.h5")))
        return table.stat().st_size / n_trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--trials", type=int, default=10000, help="a multiple of 1000")
    parser.add_argument("--fast-trials", type=int, default=100000)
    parser.add_argument("--loop-trials", type=int, default=300)
    parser.add_argument("--table-trials", type=int, default=20000)
    parser.add_argument("--agreement-trials", type=int, default=100000)
    args = parser.parse_args()
    os.environ["LLAMA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-trials-")  # setup from scratch
    import healpy  # noqa: F401  (its import, ~2 s, is not part of fast mode's setup per map)

    sample = default_background_sample()
    model = load_model("o3", "o3-table", sample)
    sample_s, background = cpu(trials_mod.SampleBackground.of, model, sample)  # shared below
    normalised_s, _ = cpu(background.normalised)  # exact mode's, once per process
    rows = []
    for label, name in MAPS.items():
        rows += bench(label, Path(args.shared) / "gw_skymaps" / name, model, sample, args)
    print(f"{'map':26s} {'search':12s} {'loop /s':>8s} {'warm-up s':>9s} {'exact /s':>9s} "
          f"{'fast /s':>9s} {'setup s':>7s} {'cached s':>8s} {'exact=loop':>10s} "
          f"{'fast err med':>12s} {'p99':>8s} {'top10% med':>10s} {'p99':>8s}")
    for label, search, loop_rate, warm, exact, fast, build, load, same, med, p99, tmed, tp99 in rows:
        print(f"{label:26s} {search:12s} {loop_rate:8.0f} {warm:9.2f} {exact:9.0f} {fast:9.0f} "
              f"{build:7.1f} {load:8.2f} {same:10.1e} {med:12.1e} {p99:8.1e} {tmed:10.1e} "
              f"{tp99:8.1e}")
    print(f"exact/loop speed-up: {', '.join(f'{r[4] / r[2]:.1f}x' for r in rows)}; "
          f"fast/exact: {', '.join(f'{r[5] / r[4]:.0f}x' for r in rows)}; targets: exact >= "
          f"{TARGETS['exact']:.0f}/s, fast >= {TARGETS['fast']:.0f}/s per core (exact: after a "
          "1,000-trial warm-up that builds the map's value tables, CPU in 'warm-up s'; fast: after "
          "its one-time setup per map, kept in the cache; a job then loads it in 'cached s')")
    print(f"one-time setup per process: P_emp and A of the {len(sample.zenith)} background-sample "
          f"rows, {sample_s:.2f} s, and their normalised sky sums (exact mode), {normalised_s:.2f} s "
          "(trials of every map then look them up)")
    first = Path(args.shared) / "gw_skymaps" / next(iter(MAPS.values()))
    print("p-values, exact vs fast mode, subthreshold, S251112cm:")
    print("\n".join(agreement(first, model, sample, args.agreement_trials)))
    if not Path(importlib.util.cache_from_source(llama.cli.main.__file__)).exists():
        print("note: no bytecode cache (PYTHONDONTWRITEBYTECODE?): the start-up below includes "
              "compiling every module, about 3 s here; `python -m compileall` the environment, as "
              "pip install does")
    wall, cpu_s = significance_wall_time(Path(args.shared), 100000)
    print(f"llama significance --trials 100000 (fast mode), S251112cm: {wall:.1f} s wall, "
          f"{cpu_s:.1f} s CPU, start-up included (target 10 s)")
    size = bytes_per_trial(first, args.table_trials)
    print(f"collated table: {size:.1f} bytes/trial ({args.table_trials} trials, 4 jobs; "
          "target <= 32)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          "(target <= 2048)")


if __name__ == "__main__":
    main()
