"""``llama background``: background and injection campaigns (SCIENCE.md section 6).

    llama background run --skymaps MAPS... --trials N --seed S --out URL [--job K | --jobs K]
    llama background table URL... -o TABLE
    llama background pvalue TABLE... -o populations.hdf5
    llama background submit ...      (an HTCondor DAG of run jobs and a collation node)
    llama background simulate --population bns --network H1L1 --count N --seed S --out DIR
    llama background sensitivity INJECTION_TABLE... --background TABLE [--skymaps MAPS...] -o PREFIX

URLs are local paths, ``file://`` or ``s3://`` (s3fs; endpoint from $FSSPEC_S3_ENDPOINT_URL,
credentials from the usual AWS variables or $AWS_SHARED_CREDENTIALS_FILE).
"""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, add_model_options, run_guarded, setup_logging

PROG = "llama background"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Background trials and signal injections on GW sky maps: run jobs, collate "
        "their results, and turn background tables into populations.hdf5.",
    )
    add_common_options(p)
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)

    run = sub.add_parser("run", help="run one job (or K jobs in a local process pool)")
    run.add_argument("--skymaps", nargs="+", required=True, metavar="MAP",
                     help="sky maps (FITS), or one text file listing one path a line")
    run.add_argument("--trials", type=int, required=True, help="trials per job")
    run.add_argument("--seed", type=int, required=True, help="campaign seed")
    run.add_argument("--out", required=True, metavar="URL",
                     help="prefix (directory, file:// or s3://) for job-NNNNNN.h5 files")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--job", type=int, default=0, metavar="K", help="run job K (default 0)")
    which.add_argument("--jobs", type=int, metavar="K",
                       help="run jobs 0..K-1 in a local process pool (one per core)")
    run.add_argument("--inject", type=float, default=0.0, metavar="MU",
                     help="mean signal neutrinos per trial (default 0: background)")
    run.add_argument("--snr", type=float, help="network SNR of every trial (default: the "
                     "default_snr setting)")
    run.add_argument("--workers", type=int, help="processes for --jobs (default: cores)")
    add_mode_option(run)
    add_model_options(run)
    add_common_options(run)

    table = sub.add_parser("table", help="collate job results into one table")
    table.add_argument("inputs", nargs="+", metavar="URL", help="job results files")
    table.add_argument("-o", "--output", required=True, metavar="URL", help="table to write")
    table.add_argument("--populations", metavar="URL",
                       help="also write the background populations (as `pvalue`) here")
    add_common_options(table)

    pvalue = sub.add_parser("pvalue", help="background tables -> populations.hdf5")
    pvalue.add_argument("tables", nargs="+", metavar="URL", help="collated background tables")
    pvalue.add_argument("-o", "--output", required=True, help="populations HDF5 (created/updated)")
    add_common_options(pvalue)

    submit = sub.add_parser("submit", help="write (and optionally submit) an HTCondor DAG")
    submit.add_argument("--skymaps", nargs="+", required=True, metavar="MAP",
                        help="sky maps (transferred with every job), or a text file listing them")
    submit.add_argument("--trials-per-job", type=int, required=True)
    submit.add_argument("--jobs", type=int, required=True, help="number of run jobs")
    submit.add_argument("--seed", type=int, required=True, help="campaign seed")
    submit.add_argument("--out", required=True, metavar="URL",
                        help="where jobs commit their results (s3://bucket/prefix on the grid)")
    submit.add_argument("--profile", choices=["local", "osg", "ldg"], default="local")
    submit.add_argument("--dag-dir", help="directory for the DAG (default ./llama-dag-SEED)")
    submit.add_argument("--executable", help="llama command on the execute point "
                        "(default: the profile's)")
    submit.add_argument("--accounting-group", help="accounting_group (required for ldg)")
    submit.add_argument("--accounting-group-user", help="accounting_group_user (default $USER)")
    submit.add_argument("--credentials-file", help="S3 credentials file, transferred with "
                        "each job (never copied into a submit file)")
    submit.add_argument("--s3-endpoint", help="S3 endpoint URL for non-AWS object stores")
    submit.add_argument("--sites", help="osg: +DESIRED_Sites")
    submit.add_argument("--search", choices=["subthreshold", "opa"], default="subthreshold")
    submit.add_argument("--inject", type=float, default=0.0, metavar="MU")
    add_mode_option(submit)
    submit.add_argument("--dry-run", action="store_true",
                        help="print the DAG and submit descriptions; write nothing")
    submit.add_argument("--submit", action="store_true", help="run condor_submit_dag after")
    add_common_options(submit)
    _add_simulate_parser(sub)
    _add_sensitivity_parser(sub)
    return p


def _add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    simulate = sub.add_parser("simulate", help="make simulated BAYESTAR sky maps (ligo.skymap)")
    simulate.add_argument("--population", choices=["bns", "nsbh", "bbh"], required=True)
    simulate.add_argument("--network", choices=["H1L1", "H1L1V1"], required=True)
    simulate.add_argument("--count", type=int, required=True, help="number of sky maps")
    simulate.add_argument("--seed", type=int, required=True, help="seed (same seed, same maps)")
    simulate.add_argument("--out", required=True, metavar="DIR", help="writes "
                          "DIR/<population>-<network>-<sensitivity>/ (maps + manifest.json)")
    simulate.add_argument("--sensitivity", choices=["o3", "o4"], default="o3",
                          help="noise curves (default o3)")
    simulate.add_argument("--jobs", type=int, default=1, help="localisation processes")
    add_common_options(simulate)


def _add_sensitivity_parser(sub: argparse._SubParsersAction) -> None:
    sens = sub.add_parser(
        "sensitivity", help="detection efficiency of injections vs neutrino emission energy",
        description="Detection efficiency (fraction of injection trials with p <= threshold "
        "against the background) versus the isotropic-equivalent neutrino emission energy (with "
        "--skymaps) or the injected signal mean mu: PREFIX.png, PREFIX.pdf (plot) and "
        "PREFIX.ecsv (the points, CSV with a metadata header).")
    sens.add_argument("injections", nargs="+", metavar="TABLE",
                      help="collated tables (or job files) of `run --inject MU` campaigns, one or "
                      "more per MU")
    sens.add_argument("--background", required=True, metavar="URL",
                      help="background table of the same campaign (same search, maps, mode and "
                      "model, no --inject), or a populations.hdf5")
    sens.add_argument("--skymaps", nargs="+", metavar="MAP",
                      help="the campaign's sky maps (or a text file listing them): x axis = "
                      "emission energy from their 3-D posteriors (without them: x axis = mu)")
    sens.add_argument("--p-threshold", type=float, nargs="+", default=[0.01], metavar="ALPHA",
                      help="detected when p <= ALPHA; one curve each (default 0.01)")
    sens.add_argument("--confidence", type=float, default=None, metavar="CL",
                      help="confidence of the Clopper-Pearson error bars (default 0.6827, 1 sigma)")
    sens.add_argument("-o", "--output", default="sensitivity", metavar="PREFIX",
                      help="writes PREFIX.png, PREFIX.pdf and PREFIX.ecsv (default sensitivity; "
                      "a path, file:// or s3:// prefix)")
    add_common_options(sens)


def add_mode_option(p: argparse.ArgumentParser) -> None:
    """--mode: how the trials engine computes the sky sums (exact | fast)."""
    p.add_argument("--mode", choices=["exact", "fast"], default="exact",
                   help="exact: each trial's odds are what `llama significance` gives for its "
                   "neutrinos; fast: the sky map smoothed once by the PSFs and interpolated, "
                   "the smoothed grids kept in <cache dir>/smoothed-sky for the next job "
                   "(error and speed: benchmarks/bench_trials.py) (default exact)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(f"{PROG} {args.action}", lambda: ACTIONS[args.action](args))


def _campaign(args: argparse.Namespace):
    from llama.background.campaign import Campaign, read_skymap_list
    from llama.cli.common import settings_from_args

    settings = settings_from_args(args)
    if args.snr is not None:
        settings = settings.replace(default_snr=args.snr)
    return Campaign(read_skymap_list(args.skymaps), args.search, args.inject, args.seed, settings,
                    args.mode)


def _run(args: argparse.Namespace) -> int:
    from llama.background.campaign import run_job
    from llama.errors import InputError

    campaign = _campaign(args)
    if args.trials < 1:
        raise InputError(f"--trials must be at least 1, got {args.trials}")
    if args.jobs is None:
        url = run_job(campaign, args.job, args.trials, args.out, progress=sys.stderr.isatty())
        print(url)
        return 0
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_job, campaign, k, args.trials, args.out)
                   for k in range(args.jobs)]
        for future in tqdm(futures, desc="jobs", unit="job", disable=not sys.stderr.isatty()):
            print(future.result())
    return 0


def _table(args: argparse.Namespace) -> int:
    from llama.background.campaign import collate, write_populations, write_table

    table = collate(args.inputs)
    write_table(table, args.output)
    for url, digest in table.sources.items():
        print(f"{url}  sha256 {digest}")
    print(f"{args.output}: {len(table)} trials from {len(table.sources)} jobs "
          f"({table.attrs['search']}, injected mu {table.attrs['injected_mu']:g})")
    if args.populations:
        for key, count in write_populations([table], args.populations).items():
            print(f"{args.populations}: {key}: {count} background trials")
    return 0


def _pvalue(args: argparse.Namespace) -> int:
    from llama.background.campaign import read_table, write_populations

    counts = write_populations([read_table(url) for url in args.tables], args.output)
    for key, count in counts.items():
        print(f"{args.output}: {key}: {count} background trials")
    return 0


def _submit(args: argparse.Namespace) -> int:
    import shutil
    import subprocess
    from pathlib import Path

    from llama.background.campaign import read_skymap_list
    from llama.condor.dag import CampaignJobs, profile, submit_descriptions, write_dag
    from llama.errors import ConfigurationError

    prof = profile(args.profile, args.executable, args.sites)
    jobs = CampaignJobs(
        skymaps=tuple(str(Path(p).absolute()) for p in read_skymap_list(args.skymaps)),
        trials_per_job=args.trials_per_job,
        jobs=args.jobs,
        seed=args.seed,
        out=args.out,
        run_options=("--search", args.search, "--inject", f"{args.inject:g}",
                     *(("--mode", args.mode) if args.mode != "exact" else ())),
        accounting_group=args.accounting_group,
        accounting_group_user=args.accounting_group_user,
        credentials_file=str(Path(args.credentials_file).absolute())
        if args.credentials_file else None,
        s3_endpoint=args.s3_endpoint,
    )
    if args.dry_run:
        jobs.check(prof.name)
        run, collate = submit_descriptions(jobs, prof)
        for name, description in (("run.sub", run), ("collate.sub", collate)):
            print(f"# {name}")
            print("".join(f"{key} = {value}\n" for key, value in description.items()))
        print(f"# {args.jobs} run nodes (RETRY 3), then 1 collate node; profile {prof.name}; "
              f"{args.jobs * args.trials_per_job} trials in all")
        return 0
    dag_dir = Path(args.dag_dir or f"llama-dag-{args.seed}")
    dag_file = write_dag(jobs, prof, dag_dir)
    print(f"wrote {dag_file} ({args.jobs} run nodes + collate, profile {prof.name})")
    if not args.submit:
        print(f"submit with: cd {dag_dir} && condor_submit_dag {dag_file.name}")
        return 0
    command = shutil.which("condor_submit_dag")
    if command is None:
        raise ConfigurationError("condor_submit_dag not found: run this on an HTCondor access "
                                 f"point, or submit {dag_file} there")
    return subprocess.run([command, dag_file.name], cwd=dag_dir, check=False).returncode


def _simulate(args: argparse.Namespace) -> int:
    from llama.background.simulate import simulate

    manifest = simulate(args.population, args.network, args.count, args.seed, args.out,
                        sensitivity=args.sensitivity, jobs=args.jobs,
                        progress=sys.stderr.isatty())
    print(manifest)
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from llama.background.sensitivity import sensitivity, write_products
    from llama.science.efficiency import ONE_SIGMA

    result = sensitivity(args.injections, args.background, args.p_threshold,
                         ONE_SIGMA if args.confidence is None else args.confidence,
                         args.skymaps, progress=sys.stderr.isatty())
    eff, energy = result.efficiency, result.emission_energy()
    print(f"{'mu':>8} {'E_iso [erg]':>12} " + " ".join(f"{f'p <= {a:g}':>24}"
                                                      for a in eff.thresholds))
    for j, mu in enumerate(eff.mu):
        cells = [f"{eff.n_detected[i, j]:>5}/{eff.n_trials[j]:<5} {eff.efficiency[i, j]:5.3f} "
                 f"[{eff.low[i, j]:.2f}, {eff.high[i, j]:.2f}]" for i in range(eff.thresholds.size)]
        e_iso = "n/a" if energy is None else f"{energy[j]:.3g}"
        print(f"{mu:>8g} {e_iso:>12} " + " ".join(f"{c:>24}" for c in cells))
    for alpha, mu in result.meta["mu_90"].items():
        at = ("not reached" if mu is None else f"mu = {mu:.3g}" + (
            "" if energy is None else f", E_iso = {result.meta['e_iso_90_erg'][alpha]:.3g} erg"))
        print(f"90% efficiency at p <= {alpha}: {at}")
    for url in write_products(result, args.output):
        print(f"wrote {url}")
    return 0


ACTIONS = {"run": _run, "table": _table, "pvalue": _pvalue, "submit": _submit,
           "simulate": _simulate, "sensitivity": _sensitivity}


if __name__ == "__main__":
    sys.exit(main())
