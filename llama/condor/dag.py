"""HTCondor DAGs for campaigns, written with the official bindings (htcondor2, htcondor2.dags).

One DAG per campaign: a layer of ``run`` nodes (one per job, all sharing ``run.sub`` and told
their job index by a DAG variable) and a ``collate`` node, child of every run node, that
collates the job files into a table and writes the background populations. Run nodes are
retried (``RETRY 3``); a job whose results file is already committed at its URL skips the work
(llama.background.campaign.run_job), so a rescue DAG redoes only what is missing.

Profiles:

* ``local``: a personal pool (scripts/condor_pool.sh); llama from ``--executable``.
* ``osg``: the OSPool; the job runs in the llama container unpacked on CVMFS
  (``container_image``, with ``+SingularityImage`` as the older spelling) on execute points
  with Singularity/Apptainer and the singularity.opensciencegrid.org repository.
* ``ldg``: the LIGO Data Grid; llama run by the IGWN conda environment on CVMFS through a small
  wrapper written beside the DAG; an accounting group is required, as LDG requires.

No credential is ever written into a submit file: S3 credentials travel as a file transferred
with the job (``transfer_input_files``) and named by ``AWS_SHARED_CREDENTIALS_FILE``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from llama import __version__
from llama.errors import ConfigurationError, InputError

CVMFS_IMAGE = "/cvmfs/singularity.opensciencegrid.org/llama-multimessenger/llama:{version}"
IGWN_CONDA = "/cvmfs/software.igwn.org/conda"
IGWN_ENVIRONMENT = "igwn-py311"
DAG_FILE = "llama_background.dag"
RUN_RETRIES = 3
COLLATE_RETRIES = 2
#: Every submit-description key llama writes (the bindings accept misspelled keys silently).
ALLOWED_SUBMIT_KEYS = frozenset({
    "universe", "executable", "arguments", "transfer_executable", "container_image",
    "+SingularityImage", "+DESIRED_Sites", "requirements", "request_cpus", "request_memory",
    "request_disk", "accounting_group", "accounting_group_user", "should_transfer_files",
    "when_to_transfer_output", "transfer_input_files", "environment", "output", "error", "log",
    "getenv", "max_retries", "batch_name", "on_exit_hold", "periodic_release",
})  # fmt: skip


@dataclass(frozen=True)
class Profile:
    """Where and how the jobs run."""

    name: str
    executable: str
    keys: dict[str, str] = field(default_factory=dict)
    wrapper: str | None = None  # text of an executable script written beside the DAG


def profile(name: str, executable: str | None = None, sites: str | None = None) -> Profile:
    """The profile ``name`` (local, osg, ldg); ``executable`` overrides its llama command."""
    if name == "local":
        return Profile("local", executable or "/opt/llama/bin/llama", {"universe": "vanilla"})
    if name == "osg":
        image = CVMFS_IMAGE.format(version=__version__)
        keys = {
            "universe": "container",
            "container_image": image,
            "+SingularityImage": f'"{image}"',
            "transfer_executable": "false",
            "requirements": "(HAS_SINGULARITY == True) && "
            "(HAS_CVMFS_singularity_opensciencegrid_org == True)",
        }
        if sites:
            keys["+DESIRED_Sites"] = f'"{sites}"'
        return Profile("osg", executable or "/opt/llama/bin/llama", keys)
    if name == "ldg":
        wrapper = (
            "#!/bin/sh\n"
            "# llama in the IGWN conda environment on CVMFS (llama itself: pip install --user)\n"
            f". {IGWN_CONDA}/etc/profile.d/conda.sh && conda activate {IGWN_ENVIRONMENT} || exit 1\n"
            'exec python -m llama.cli.main "$@"\n'
        )
        keys = {
            "universe": "vanilla",
            "getenv": "false",
            "requirements": "(HAS_CVMFS_software_igwn_org =?= True) && (OpSys == \"LINUX\")",
        }
        return Profile("ldg", executable or "llama_igwn.sh", keys, wrapper)
    raise ConfigurationError(f"unknown HTCondor profile {name!r}; choose local, osg or ldg")


@dataclass(frozen=True)
class CampaignJobs:
    """A campaign as the DAG sees it."""

    skymaps: tuple[str, ...]  # paths on the access point, transferred with every job
    trials_per_job: int
    jobs: int
    seed: int
    out: str  # URL prefix of the job files (s3://bucket/prefix or a path on a shared FS)
    run_options: tuple[str, ...] = ()  # further `llama background run` options
    accounting_group: str | None = None
    accounting_group_user: str | None = None
    credentials_file: str | None = None  # S3 credentials, transferred with the job
    s3_endpoint: str | None = None

    def check(self, profile_name: str) -> None:
        if self.jobs < 1 or self.trials_per_job < 1:
            raise InputError("a campaign needs at least one job of at least one trial")
        if profile_name == "ldg" and not self.accounting_group:
            raise InputError("the ldg profile needs --accounting-group (LDG accounting tag)")
        for path in self.skymaps + ((self.credentials_file,) if self.credentials_file else ()):
            if not Path(path).is_file():
                raise InputError(f"{path}: no such file (it is transferred with every job)")


def _resources(jobs: CampaignJobs) -> dict[str, str]:
    """request_cpus/memory/disk from the job's inputs: the maps are read in memory (a flat
    NSIDE-1024 map takes ~100 MB decompressed) and the results are ~40 bytes a trial."""
    map_bytes = sum(os.path.getsize(p) for p in jobs.skymaps)
    memory_mb = 1024 + math.ceil(8 * map_bytes / 2**20)
    disk_mb = 512 + math.ceil((2 * map_bytes + 64 * jobs.trials_per_job) / 2**20)
    return {"request_cpus": "1", "request_memory": f"{memory_mb}MB",
            "request_disk": f"{disk_mb}MB"}


def _common(jobs: CampaignJobs, prof: Profile, name: str) -> dict[str, str]:
    inputs = list(jobs.skymaps) + ([jobs.credentials_file] if jobs.credentials_file else [])
    environment = []
    if jobs.credentials_file:
        environment.append(f"AWS_SHARED_CREDENTIALS_FILE={Path(jobs.credentials_file).name}")
    if jobs.s3_endpoint:
        environment.append(f"FSSPEC_S3_ENDPOINT_URL={jobs.s3_endpoint}")
    keys = {
        **prof.keys,
        "executable": prof.executable,
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "transfer_input_files": ",".join(inputs),
        "output": f"logs/{name}.$(job).out",
        "error": f"logs/{name}.$(job).err",
        "log": "logs/llama_background.log",
        "batch_name": f"llama-background-{jobs.seed}",
        **_resources(jobs),
    }
    if environment:
        keys["environment"] = '"' + " ".join(environment) + '"'
    if jobs.accounting_group:
        keys["accounting_group"] = jobs.accounting_group
        keys["accounting_group_user"] = jobs.accounting_group_user or os.environ.get("USER", "")
    return keys


def submit_descriptions(jobs: CampaignJobs, prof: Profile) -> tuple[dict, dict]:
    """(run, collate) submit descriptions as key -> value dicts (checked against the allow-list)."""
    maps = [Path(p).name for p in jobs.skymaps]  # transferred into the job's scratch directory
    run_args = ["background", "run", "--skymaps", *maps, "--trials", str(jobs.trials_per_job),
                "--seed", str(jobs.seed), "--out", jobs.out, "--job", "$(job)",
                *jobs.run_options]
    run = {**_common(jobs, prof, "run"), "arguments": _arguments(run_args)}
    job_urls = [f"{jobs.out.rstrip('/')}/job-{k:06d}.h5" for k in range(jobs.jobs)]
    collate_args = ["background", "table", *job_urls, "-o", f"{jobs.out.rstrip('/')}/table.h5",
                    "--populations", f"{jobs.out.rstrip('/')}/populations.hdf5"]
    collate = {**_common(jobs, prof, "collate"), "arguments": _arguments(collate_args)}
    collate["output"], collate["error"] = "logs/collate.out", "logs/collate.err"
    collate["transfer_input_files"] = jobs.credentials_file or ""
    if not collate["transfer_input_files"]:
        del collate["transfer_input_files"]
    for description in (run, collate):
        unknown = set(description) - ALLOWED_SUBMIT_KEYS
        if unknown:
            raise ConfigurationError(f"submit keys not in the allow-list: {sorted(unknown)}")
    return run, collate


def _arguments(args: list[str]) -> str:
    """HTCondor's new-style quoted arguments (double quotes, single-quoted words)."""
    return '"' + " ".join("'" + a.replace("'", "''").replace('"', '""') + "'" for a in args) + '"'


def write_dag(jobs: CampaignJobs, prof: Profile, directory: str | os.PathLike) -> Path:
    """Write the DAG, its submit files (and the profile's wrapper) into ``directory``."""
    try:
        import htcondor2
        from htcondor2 import dags
    except ImportError:
        raise ConfigurationError(
            "writing a DAG needs the HTCondor Python bindings: pip install 'llama[grid]'"
        ) from None

    jobs.check(prof.name)
    directory = Path(directory)
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    run, collate = submit_descriptions(jobs, prof)
    dag = dags.DAG()
    run_layer = dag.layer(
        name="run",
        submit_description=htcondor2.Submit(run),
        vars=[{"job": str(k)} for k in range(jobs.jobs)],
        retries=RUN_RETRIES,
    )
    run_layer.child_layer(
        name="collate",
        submit_description=htcondor2.Submit(collate),
        vars=[{"job": "collate"}],
        retries=COLLATE_RETRIES,
    )
    if prof.wrapper:
        wrapper = directory / prof.executable
        wrapper.write_text(prof.wrapper)
        wrapper.chmod(0o755)
    return dags.write_dag(dag, directory, dag_file_name=DAG_FILE)
