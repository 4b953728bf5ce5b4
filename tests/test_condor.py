"""Campaign jobs, collation and the HTCondor DAGs of `llama background`.

The DAGs themselves run for real in a personal HTCondor pool with S3 staging in
scripts/condor_campaign_test.py (it needs root and a debootstrapped pool: see htcondor/README.md).
Here: golden files of the osg and ldg profiles (regenerate with LLAMA_UPDATE_GOLDEN=1), the
submit-key allow-list, every expression parsed by classad2, no credential in any generated
file, and the jobs' own guarantees (same seed, same bytes; duplicates and injections refused).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from llama.background.campaign import Campaign, collate, read_table, run_job, write_populations
from llama.condor.dag import ALLOWED_SUBMIT_KEYS, CampaignJobs, profile, write_dag
from llama.config import Settings
from llama.errors import InputError

GOLDEN = Path(__file__).resolve().parents[1] / "htcondor" / "examples"
MAP = "S251112cm_bayestar.multiorder.fits"
SECRET = "do-not-leak-7f3a9c"


@pytest.fixture
def campaign_dir(tmp_path, monkeypatch) -> Path:
    """A DAG directory with a real sky map and a credentials file, as a user would have."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maps").mkdir()
    shutil.copy(shared_path("gw_skymaps", MAP), tmp_path / "maps" / MAP)
    (tmp_path / "s3.credentials").write_text(
        f"[default]\naws_access_key_id = AKIA{SECRET}\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.setenv("USER", "albert.einstein")
    return tmp_path


def jobs_for(profile_name: str) -> CampaignJobs:
    return CampaignJobs(
        skymaps=(f"maps/{MAP}",),
        trials_per_job=1000,
        jobs=4,
        seed=2026,
        out="s3://llama-campaigns/bns-o4",
        run_options=("--search", "subthreshold", "--inject", "0"),
        accounting_group="ligo.dev.o4.cbc.grb.llama" if profile_name == "ldg" else None,
        credentials_file="s3.credentials",
        s3_endpoint="https://s3.example.org" if profile_name == "osg" else None,
    )


@pytest.mark.parametrize("profile_name", ["osg", "ldg", "local"])
def test_dag_and_submit_files_match_the_golden_files(campaign_dir, profile_name):
    prof = profile(profile_name, sites="MWT2" if profile_name == "osg" else None)
    out = campaign_dir / "dag"
    write_dag(jobs_for(profile_name), prof, out)
    written = {p.name: p.read_text() for p in sorted(out.iterdir()) if p.is_file()}
    assert {"llama_background.dag", "run.sub", "collate.sub"} <= set(written)
    golden = GOLDEN / profile_name
    if os.environ.get("LLAMA_UPDATE_GOLDEN") == "1":
        shutil.rmtree(golden, ignore_errors=True)
        golden.mkdir(parents=True)
        for name, text in written.items():
            (golden / name).write_text(text)
    expected = {p.name: p.read_text() for p in sorted(golden.iterdir())}
    assert written == expected


def submit_keys(text: str) -> dict[str, str]:
    keys = {}
    for line in text.splitlines():
        if line.strip() and line.strip() != "queue":
            name, _, value = line.partition(" = ")
            keys["+" + name.removeprefix("MY.") if name.startswith("MY.") else name] = value
    return keys


@pytest.mark.parametrize("profile_name", ["osg", "ldg", "local"])
def test_submit_keys_are_allowed_and_expressions_parse(campaign_dir, profile_name):
    import classad2

    write_dag(jobs_for(profile_name), profile(profile_name, sites="MWT2"), campaign_dir / "dag")
    for name in ("run.sub", "collate.sub"):
        keys = submit_keys((campaign_dir / "dag" / name).read_text())
        assert set(keys) <= ALLOWED_SUBMIT_KEYS, set(keys) - ALLOWED_SUBMIT_KEYS
        for key in ("requirements", "+SingularityImage", "+DESIRED_Sites"):
            if key in keys:
                classad2.ExprTree(keys[key])  # raises on a malformed expression
        if profile_name == "osg":
            assert "HAS_CVMFS_singularity_opensciencegrid_org" in keys["requirements"]
            assert keys["container_image"].startswith("/cvmfs/singularity.opensciencegrid.org/")
        if profile_name == "ldg":
            assert "HAS_CVMFS_software_igwn_org" in keys["requirements"]
            assert keys["accounting_group"] == "ligo.dev.o4.cbc.grb.llama"
            assert keys["accounting_group_user"] == "albert.einstein"


def test_a_malformed_expression_is_caught_by_classad():
    import classad2

    with pytest.raises(Exception):  # noqa: B017 - the bindings raise a plain error type
        classad2.ExprTree("(HAS_SINGULARITY == True) &&")


def test_no_credential_in_any_generated_file(campaign_dir):
    for profile_name in ("osg", "ldg", "local"):
        out = campaign_dir / f"dag-{profile_name}"
        write_dag(jobs_for(profile_name), profile(profile_name), out)
        for path in out.rglob("*"):
            if path.is_file():
                assert SECRET not in path.read_text(), path
        run = submit_keys((out / "run.sub").read_text())
        assert "s3.credentials" in run["transfer_input_files"]
        assert "AWS_SHARED_CREDENTIALS_FILE=s3.credentials" in run["environment"]


def test_ldg_needs_an_accounting_group_and_unknown_profiles_are_refused(campaign_dir):
    jobs = CampaignJobs((f"maps/{MAP}",), 10, 2, 1, "s3://b/p")
    with pytest.raises(InputError, match="accounting"):
        write_dag(jobs, profile("ldg"), campaign_dir / "dag")
    from llama.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="profile"):
        profile("aws")


def test_submit_dry_run_for_a_thousand_jobs_prints_and_writes_nothing(campaign_dir, capsys):
    from llama.cli.background import main

    assert main(["submit", "--dry-run", "--profile", "osg", "--skymaps", f"maps/{MAP}",
                 "--trials-per-job", "10000", "--jobs", "1000", "--seed", "1",
                 "--out", "s3://llama-campaigns/o4-bns"]) == 0
    printed = capsys.readouterr().out
    assert "1000 run nodes" in printed and "10000000 trials in all" in printed
    assert "container_image = /cvmfs/singularity.opensciencegrid.org/" in printed
    assert not (campaign_dir / "llama-dag-1").exists()


# ------------------------------------------------------------------ jobs and collation


@pytest.fixture(scope="module")
def small_campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    skymaps = (str(shared_path("gw_skymaps", MAP)),
               str(shared_path("gw_skymaps", "MS181101ab_userguide_bayestar.multiorder.fits")))
    campaign = Campaign(skymaps, "subthreshold", 0.0, 11, Settings())
    urls = [run_job(campaign, k, 30, str(out / "jobs")) for k in range(3)]
    return campaign, out, urls


def test_a_job_is_reproducible_and_skipped_once_committed(small_campaign, tmp_path):
    campaign, out, urls = small_campaign
    again = run_job(campaign, 1, 30, str(tmp_path / "again"))
    assert Path(again).read_bytes() == Path(urls[1]).read_bytes()
    before = os.stat(urls[1]).st_mtime_ns
    assert run_job(campaign, 1, 30, str(out / "jobs")) == urls[1]  # committed: skipped
    assert os.stat(urls[1]).st_mtime_ns == before
    other_job = Path(urls[0]).read_bytes()
    assert other_job != Path(urls[1]).read_bytes()  # jobs never share random streams


def test_collation_is_exact_and_refuses_duplicates(small_campaign, tmp_path):
    _, out, urls = small_campaign
    table = collate(urls)
    assert len(table) == 90 and table.attrs["n_jobs"] == 3
    assert sorted(set(table.columns["job"].tolist())) == [0, 1, 2]
    assert np.array_equal(np.bincount(table.columns["skymap"]), [45, 45])  # round-robin
    with pytest.raises(InputError, match="also in"):
        collate(urls + [urls[0]])
    counts = write_populations([table], str(tmp_path / "populations.hdf5"))
    assert sum(counts.values()) == 90


def test_injections_never_land_in_a_background_population(small_campaign, tmp_path):
    campaign, _, _ = small_campaign
    injected = Campaign(campaign.skymaps, "subthreshold", 3.0, 12, Settings())
    url = run_job(injected, 0, 10, str(tmp_path / "inj"))
    table = read_table(url)
    assert np.all(table.columns["injected_mu"] == 3.0)
    with pytest.raises(InputError, match="injections never go into a background population"):
        write_populations([table], str(tmp_path / "populations.hdf5"))
    assert not (tmp_path / "populations.hdf5").exists()


def test_readme_campaign_example_runs_as_written(tmp_path):
    """The README's campaign commands, run by bash from a directory with ../shared beside it."""
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Campaigns: jobs, collation, HTCondor", 1)[1]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_path())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "campaign/table.h5: 200 trials from 4 jobs" in done.stdout
    assert "populations.hdf5: subthreshold/bns/o3/" in done.stdout
    assert "1000 run nodes" in done.stdout
