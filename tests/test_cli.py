"""The ``llama`` command line: --help everywhere, significance end to end, bad input."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import numpy as np
import pytest
from astropy.io import fits
from conftest import shared_path

from llama.cli.main import COMMANDS
from llama.io.neutrinos import ReleaseCatalog, write_llama_json

S251112CM = "S251112cm_bayestar.multiorder.fits"
S251112CM_GPS = "1446995943.363443"  # 2025-11-12T15:18:45.363443 UTC (sky-map DATE-OBS)
SUBTHRESHOLD_KEYS = {"p_value", "odds_ratio", "p_h_s1", "p_h_s2", "p_h_0", "p_h_c", "n_background",
                     "dump", "inputs", "single_neutrino", "far", "p_value_note", "retracted",
                     "neutrino_flux_sensitivity_range", "neutrino_list_complete"}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def llama_subprocess(*args, cwd=None, check=False, module="llama.cli.main"):
    """Run ``python -m MODULE ARGS`` in a fresh interpreter, as a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", module, *map(str, args)],
                            capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def llama(*args, cwd=None, check=False):
    """Run ``llama ARGS`` in this process through the same entry point as the console script
    (llama.cli.main.main), capturing stdout, stderr and log output; returns the exit code.

    Saves an interpreter start-up per call; test_entry_points_* run the real commands."""
    from llama.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []  # so the command's logging.basicConfig writes to the captured stderr
    previous_dir = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:  # argparse: --help, --version, usage errors
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        os.chdir(previous_dir)
        root.handlers, root.level = saved_handlers, saved_level
    result = Result(code, out.getvalue(), err.getvalue())
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result, *needles):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    result = llama(command, "--help", check=True)
    assert result.stdout.startswith(f"usage: llama {command}")


def test_top_level_help_and_version():
    from llama import __version__

    assert llama_subprocess("--version", check=True).stdout.strip() == f"llama {__version__}"
    listing = llama_subprocess("--help", check=True).stdout
    assert all(command in listing for command in COMMANDS)
    assert llama_subprocess().returncode != 0  # no command: usage and a non-zero exit


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_entry_points_version_and_one_line_errors(command, tmp_path):
    """`python -m llama.cli.<module>` is a real command: --version, and bad input gives one
    line naming the command and a non-zero exit, as `llama <command>` does."""
    from llama import __version__

    module = f"llama.cli.{COMMANDS[command][0]}"
    version = llama_subprocess("--version", module=module, check=True)
    assert version.stdout.strip() == f"llama {__version__}"
    missing = tmp_path / "no-such-file.json"
    bad = {
        "significance": ["--skymap", missing, "--neutrinos", missing, "--event-time", "0"],
        "populations": ["--skymap", missing, "-o", tmp_path / "p.hdf5"],
        "neutrino-background": ["--release", missing, "-o", tmp_path / "s.h5"],
        "skymap-info": ["--voevent", missing, "--role", "test"],
        "demo": ["--outdir", tmp_path / "demo", "--trials", "0"],
        "data": ["fetch", "no-such-data-set"],
        "background": ["run", "--skymaps", missing, "--trials", "1", "--seed", "0", "--out",
                       tmp_path / "campaign"],
        "serve": ["--host", "0.0.0.0", "--port", "0"],  # exposed without credentials
        "status": ["--run", tmp_path / "no-such-run"],
        "listen": ["dir", missing, "--max-notices", "1"],
        "run": [tmp_path / "no-such-run" / "*", "-o"],
        "flags": ["S190425z", "--run", tmp_path, "upload=true"],
        "event": ["S190425z", "--run", tmp_path],
        "provenance": [tmp_path / "no-such-event"],
    }[command]
    result = llama_subprocess(*bad, module=module)
    assert_one_line_error(result, f"llama {command}")


@pytest.fixture(scope="module")
def neutrino_file(tmp_path_factory):
    """Eight real IC40 public events, their times moved into +-450 s of the S251112cm trigger."""
    from astropy.time import Time

    catalog = ReleaseCatalog(shared_path("icecube", "icecube_10year_ps"))
    events = catalog.window(54600.0, 54601.0).select(np.arange(8))
    t_gw = Time(float(S251112CM_GPS), format="gps").utc.mjd
    events.mjd = t_gw + np.linspace(-450, 450, 8) / 86400
    path = tmp_path_factory.mktemp("nu") / "neutrinos.json"
    write_llama_json(events, path)
    return path


def test_significance_end_to_end_is_deterministic(neutrino_file, tmp_path):
    skymap = shared_path("gw_skymaps", S251112CM)
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}.json"
        result = llama("significance", "--skymap", skymap, "--neutrinos", neutrino_file,
                       "--event-time", S251112CM_GPS, "--snr", 11.5, "-o", out, check=True)
        assert "odds ratio" in result.stdout and str(out) in result.stdout
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    data = json.loads(outputs[0])
    assert set(data) == SUBTHRESHOLD_KEYS
    assert set(data["inputs"]) == {"gw_skymap_info", "neutrino_info", "search_parameters"}
    assert data["neutrino_list_complete"] is False  # as the list file says ("complete": false)
    assert "PARTIAL RESULT: the neutrino list is incomplete" in result.stdout
    # no --background: the packaged populations (scripts/build_populations.py) give the p-value
    assert data["p_value"] is not None and data["n_background"] > 0
    assert data["dump"]["populations_file"] == "populations.hdf5"
    params = data["inputs"]["search_parameters"]
    # the original LLAMA O4 spellings (issue 7: they were ρmin, Eₙmax, ϵmin before)
    assert params["rhomin"] == 5.59 and params["Enumax"] == 0.1 and params["δω"] == 2.5
    assert params["εmin"] == 10.0 and params["ΔE"] == 0.3
    assert data["far"] == pytest.approx(data["p_value"] * params["ratebggw"])
    assert params["instruments"] == ["H1", "L1", "V1"] and params["population_key"].endswith("H1L1V1")
    info = data["inputs"]["gw_skymap_info"]
    assert info["distance_mpc"] == pytest.approx(96.385199) and info["multiorder"] is True
    for record in data["inputs"]["neutrino_info"]:
        assert {"mjd", "ra", "dec", "sigma", "energy", "zenith", "azimuth", "run", "event", "type"} <= set(record)
    assert len(data["single_neutrino"]) == len(data["inputs"]["neutrino_info"]) == data["dump"]["n_neutrinos"]
    assert sum(r["odds_ratio"] for r in data["single_neutrino"]) == pytest.approx(data["odds_ratio"])


def test_significance_opa_with_populations(neutrino_file, tmp_path):
    skymap = shared_path("gw_skymaps", S251112CM)
    populations = tmp_path / "populations.hdf5"
    llama("populations", "--skymap", skymap, "--snr", 11.5, "--trials", 200, "--search", "opa",
          "--instruments", "H1,L1,V1", "-o", populations, check=True)
    out = tmp_path / "opa.json"
    llama("significance", "--skymap", skymap, "--neutrinos", neutrino_file, "--event-time",
          S251112CM_GPS, "--snr", 11.5, "--search", "opa", "--background", populations, "-o", out,
          check=True)
    data = json.loads(out.read_text())
    assert data["n_background"] == 200 and 1 / 201 <= data["p_value"] <= 1
    assert {"p_s1", "p_s2", "p_c"} <= set(data["single_neutrino"][0])
    assert data["odds_ratio"] == pytest.approx(sum(r["odds_ratio"] for r in data["single_neutrino"]))


def test_missing_population_gives_null_p_value_and_a_warning(neutrino_file, tmp_path):
    import h5py

    populations = tmp_path / "other.hdf5"
    with h5py.File(populations, "w") as f:
        f["subthreshold/bbh/o3/H1L1"] = np.arange(5.0)
    out = tmp_path / "s.json"
    result = llama("significance", "--skymap", shared_path("gw_skymaps", S251112CM), "--neutrinos",
                   neutrino_file, "--event-time", S251112CM_GPS, "--snr", 11.5, "--background",
                   populations, "-o", out, check=True)
    assert json.loads(out.read_text())["p_value"] is None
    assert "subthreshold/bns/o3/H1L1V1" in result.stderr and "not found" in result.stderr
    result = llama("significance", "--skymap", shared_path("gw_skymaps", S251112CM), "--neutrinos",
                   neutrino_file, "--event-time", S251112CM_GPS, "--background", "none", "-o",
                   out, check=True)
    assert json.loads(out.read_text())["p_value"] is None  # 'none': no populations at all
    assert "no background populations given" in result.stderr


def _bad_maps(tmp_path):
    """Corrupt variants of a real sky map: name -> (path, text expected in the error)."""
    real = shared_path("gw_skymaps", "GW190425_S190425z_bayestar.fits.gz")
    raw = real.read_bytes()
    variants = {}
    truncated = tmp_path / "truncated.fits.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    variants["truncated gzip"] = truncated
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n")
    variants["not FITS"] = text
    with fits.open(real) as hdul:
        prob = np.array(hdul[1].data["PROB"], float)
        for name, edit in {"nan": lambda p: p.__setitem__(7, np.nan),
                           "negative": lambda p: p.__setitem__(7, -1e-3),
                           "unnormalised": lambda p: p.__imul__(0.5)}.items():
            edited = prob.copy()
            edit(edited)
            hdul[1].data["PROB"] = edited
            path = tmp_path / f"{name}.fits.gz"
            with gzip.open(path, "wb") as stream:
                hdul.writeto(stream)
            variants[name] = path
    return variants


def test_bad_sky_maps_give_one_line_and_nonzero_exit(neutrino_file, tmp_path):
    for name, path in _bad_maps(tmp_path).items():
        result = llama("significance", "--skymap", path, "--neutrinos", neutrino_file,
                       "--event-time", S251112CM_GPS, "--snr", 10)
        assert_one_line_error(result, path.name)
        assert not (tmp_path / "out.json").exists(), name


def test_bad_neutrino_files_give_one_line_and_nonzero_exit(tmp_path):
    skymap = shared_path("gw_skymaps", S251112CM)
    missing_key = tmp_path / "missing.json"
    missing_key.write_text(json.dumps([{"mjd": 60991.6, "ra": 1.0, "dec": 2.0, "energy": 1e3}]))
    truncated = tmp_path / "truncated.json"
    truncated.write_text('[{"mjd": 60991.6, "ra": 1.0,')
    for path, needle in [(missing_key, "sigma"), (truncated, truncated.name),
                         (tmp_path / "absent.json", "absent.json")]:
        out = tmp_path / "out.json"
        result = llama("significance", "--skymap", skymap, "--neutrinos", path, "--event-time",
                       S251112CM_GPS, "--snr", 10, "-o", out)
        assert_one_line_error(result, needle)
        assert not out.exists()


def test_bad_values_give_one_line(neutrino_file):
    skymap = shared_path("gw_skymaps", S251112CM)
    result = llama("significance", "--skymap", skymap, "--neutrinos", neutrino_file,
                   "--event-time", "not-a-time", "--snr", 10)
    assert_one_line_error(result, "not-a-time")
    result = llama("significance", "--skymap", skymap, "--neutrinos", neutrino_file,
                   "--event-time", S251112CM_GPS, "--snr", -3)
    assert_one_line_error(result, "SNR")


def test_notice_without_energies_needs_an_assumed_energy(tmp_path):
    notice = shared_path("icecube", "alerts_json", "S230914ak_icecube_lvk_nu_track_search.json")
    skymap = shared_path("gw_skymaps", S251112CM)  # S230914ak has no public map: any real map
    args = ["significance", "--skymap", skymap, "--neutrinos", notice, "--event-time",
            "2023-09-14T11:14:01", "--snr", 10, "--allow-time-mismatch"]
    assert_one_line_error(llama(*args), "--assumed-energy")
    out = tmp_path / "notice.json"
    llama(*args, "--assumed-energy", 1e4, "-o", out, check=True)
    assert len(json.loads(out.read_text())["inputs"]["neutrino_info"]) == 2


def test_demo_runs_offline_on_simulated_inputs(tmp_path):
    """The README's main job: a generated alert -> event -> luigi ReviewPipeline."""
    result = llama("demo", "--outdir", tmp_path / "demo", "--trials", 100, cwd=tmp_path, check=True)
    assert "SIMULATED" in result.stdout and "luigi --module llama.tasks" in result.stdout
    event_dir = tmp_path / "demo" / "current_run" / "SIM-DEMO"
    for name in ["significance_subthreshold_lvc-i3.json", "significance_lvc-i3.json",
                 "icecube_neutrino_list.json", "lvc_skymap_distances.json", "skymap_info.json",
                 "SIM-DEMO.multiorder.fits"]:
        assert (event_dir / name).is_file(), name
        assert name in result.stdout
    data = json.loads((event_dir / "significance_subthreshold_lvc-i3.json").read_text())
    assert data["n_background"] == 100 and data["p_value"] is not None
    assert json.loads((event_dir / "flags.json").read_text())["role"] == "test"
    assert (event_dir / ".significance_lvc-i3.json.meta.json").is_file()


def test_options_reach_the_output(neutrino_file, tmp_path, capsys):
    """--preset, --energy-weight, --gw-background-snr, --group and --p-terrestrial are applied
    and recorded (in-process run of the command)."""
    from llama.cli.significance import main

    snrs = tmp_path / "background_snrs.txt"
    snrs.write_text("# background network SNRs\n" + "\n".join(str(5.6 + 0.01 * k) for k in range(300)))
    out = tmp_path / "o4.json"
    assert main(["--skymap", str(shared_path("gw_skymaps", S251112CM)), "--neutrinos",
                 str(neutrino_file), "--event-time", S251112CM_GPS, "--snr", "11.5",
                 "--preset", "o4", "--energy-weight", "public-aeff", "--gw-background-snr",
                 str(snrs), "--group", "Burst", "--p-terrestrial", "0.25", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    params = data["inputs"]["search_parameters"]
    assert params["k0"] == 1190 and params["Egwmax"] == 1870 and params["preset"] == "o4"
    assert params["energy_weight"] == "public-aeff" and "IC86_II" in params["energy_weight_description"]
    assert "300 background SNRs" in params["gw_background"]
    # 300 evenly spread SNRs: 6 per bin; 11.5 is above the top, so it falls in the last bin
    assert data["dump"]["P_emp_gw"] == pytest.approx(6 / (300 * (2.99 / 50)))
    assert data["dump"]["burst"] is True and data["inputs"]["gw_skymap_info"]["distance_mpc"] is None
    assert data["inputs"]["gw_skymap_info"]["p_terrestrial"] == 0.25
    assert "Burst" in capsys.readouterr().out


def test_bad_options_and_unwritable_output_give_one_line(neutrino_file, tmp_path):
    skymap = shared_path("gw_skymaps", S251112CM)
    base = ["significance", "--skymap", skymap, "--neutrinos", neutrino_file, "--event-time",
            S251112CM_GPS, "--snr", 10]
    assert_one_line_error(llama(*base, "--distance", -5), "distance")
    assert_one_line_error(llama(*base, "--p-terrestrial", 2), "p_terrestrial")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert_one_line_error(llama(*base, "--background", notes), "notes.txt")
    assert_one_line_error(llama(*base, "--neutrino-background", notes), "notes.txt")
    assert_one_line_error(llama(*base, "--gw-background-snr", notes), "notes.txt")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert_one_line_error(llama(*base, "-o", blocked / "out.json"), "a-file")


# ------------------------------------------------------------------------------ issue 7

S251112CM_NOTICE = ("icecube", "alerts_json", "acme_tutorials_derived",
                    "icecube_None_2025-11-12T15-18-45.json")


def test_wrong_event_time_or_notice_is_refused_in_one_line(tmp_path):
    skymap = shared_path("gw_skymaps", S251112CM)
    notice = shared_path(*S251112CM_NOTICE)
    base = ["significance", "--skymap", skymap, "--neutrinos", notice]
    # the time the README used to give: 2 hours after the map's DATE-OBS
    result = llama(*base, "--event-time", "1447003143.36")
    assert_one_line_error(result, "DATE-OBS", "+7199.997 s", "GPS 1446995943.363",
                          "--allow-time-mismatch")
    llama(*base, "--event-time", "1447003143.36", "--allow-time-mismatch", check=True)
    llama(*base, "--event-time", S251112CM_GPS, check=True)
    # a notice for another event, or with another trigger time
    other = json.loads(shared_path("icecube", "alerts_json",
                                   "S230914ak_icecube_lvk_nu_track_search.json").read_text())
    other["trigger_time"] = "2025-11-12T15:18:45.363Z"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    args = ["significance", "--skymap", skymap, "--neutrinos", path, "--event-time",
            S251112CM_GPS, "--assumed-energy", 1e4]
    assert_one_line_error(llama(*args, "--graceid", "S251112cm"), "notice is for S230914ak")
    other["trigger_time"] = "2025-11-12T15:18:55.363Z"
    path.write_text(json.dumps(other))
    assert_one_line_error(llama(*args), "-10.000 s from the trigger time of")


def test_o4_shaped_neutrino_list_through_llama_significance(tmp_path):
    """A list in the exact shape of a real LLAMA O4 file, and the original O4 key spellings
    of SCIENCE.md section 8 in the output, with ours beside them."""
    from astropy.time import Time

    t_gw = Time(float(S251112CM_GPS), format="gps").utc.mjd
    triggers = [
        {"azimuth": 173.62, "dec": -12.57, "energy": 1834.2, "event": 45112783, "file": None,
         "mjd": t_gw + 120 / 86400, "ra": 211.08, "run": "141207", "sigma": 0.83,
         "subevent": None, "type": "blinded", "zenith": 77.43},
        {"azimuth": 12.9, "dec": 31.2, "energy": 611.0, "event": 5532, "file": None,
         "mjd": t_gw - 300 / 86400, "ra": 35.5, "run": "141207", "sigma": 1.9,
         "subevent": None, "type": "blinded", "zenith": 121.2},
    ]
    source = tmp_path / "icecube_neutrino_list.json"
    source.write_text(json.dumps({"triggers": triggers, "complete": True}))
    out = tmp_path / "o4.json"
    llama("significance", "--skymap", shared_path("gw_skymaps", S251112CM), "--neutrinos", source,
          "--event-time", S251112CM_GPS, "--graceid", "S251112cm", "--preset", "o4", "-o", out,
          check=True)
    data = json.loads(out.read_text())
    info = data["inputs"]["gw_skymap_info"]
    for key in ("graceid", "event_time", "far", "pipeline", "alert_type", "notice_time",
                "skymap_filename", "gracedb_service_url"):
        assert key in info, key
    assert info["graceid"] == "S251112cm" and info["skymap_filename"] == S251112CM
    assert info["event_time"] == "2025-11-12T15:18:45.363"
    params = data["inputs"]["search_parameters"]
    assert params["δω"] == 18 / 7 and params["ΔE"] == 0.29162115354365997
    assert params["ndotgwnu"] == 7.578640284119736e-16 and params["εmax"] == 1e8
    assert params["psf_cutoff_sigma"] == 8.0
    rows = data["inputs"]["neutrino_info"]
    assert [r["type"] for r in rows] == ["blinded", "blinded"]
    assert all(r["subevent"] is None and r["file"] is None for r in rows)
    assert {r["i3event"] for r in data["single_neutrino"]} == {"141207_45112783", "141207_5532"}
    # the packaged o4 population gives the p-value, and the FAR is p x the GW trigger rate
    assert data["n_background"] > 0 and params["population_key"] == "subthreshold/bns/o4/H1L1V1"
    assert data["far"] == pytest.approx(data["p_value"] * params["ratebggw"])


def test_source_that_does_not_cover_the_event_is_refused(tmp_path):
    result = llama("significance", "--skymap", shared_path("gw_skymaps", S251112CM),
                   "--neutrinos", shared_path("icecube", "icecube_10year_ps"),
                   "--event-time", S251112CM_GPS)
    assert_one_line_error(result, "IC40_exp.csv", "2008-04-06T09:05:55", "2009-05-20T03:11:13",
                          "does not cover the event time 2025-11-12T15:18:45")


def test_background_and_injections_never_share_a_key(neutrino_file, tmp_path):
    import h5py

    from llama.errors import InputError
    from llama.science.pvalue import population_key

    skymap = shared_path("gw_skymaps", S251112CM)
    populations = tmp_path / "populations.hdf5"
    common = ["--skymap", skymap, "--trials", 40, "--instruments", "H1,L1,V1", "-o", populations]
    llama("populations", *common, check=True)
    with h5py.File(populations) as f:
        background = f["subthreshold/bns/o3/H1L1V1"][()]
    llama("populations", *common, "--inject", 3, "--seed", 1, check=True)
    with h5py.File(populations) as f:
        assert np.array_equal(f["subthreshold/bns/o3/H1L1V1"][()], background)
        injected = f["injections/subthreshold/bns/o3/H1L1V1/mu3"]
        assert injected.attrs["kind"] == "injections" and injected.size == 40
        assert f["subthreshold/bns/o3/H1L1V1"].attrs["snr_origin"] == "[llama] default_snr"
    out = tmp_path / "s.json"
    llama("significance", "--skymap", skymap, "--neutrinos", neutrino_file, "--event-time",
          S251112CM_GPS, "--background", populations, "-o", out, check=True)
    assert json.loads(out.read_text())["n_background"] == 40
    with pytest.raises(InputError, match="injections"):
        population_key("injections", "bns", "o3", "H1L1V1")


def test_p_value_at_the_resolution_limit_says_so(neutrino_file, tmp_path):
    import h5py

    populations = tmp_path / "zeros.hdf5"
    with h5py.File(populations, "w") as f:
        f["subthreshold/bns/o3/H1L1V1"] = np.zeros(99)
    out = tmp_path / "s.json"
    result = llama("significance", "--skymap", shared_path("gw_skymaps", S251112CM),
                   "--neutrinos", neutrino_file, "--event-time", S251112CM_GPS, "--background",
                   populations, "-o", out, check=True)
    data = json.loads(out.read_text())
    assert data["p_value"] == 0.01 and "resolution limit" in data["p_value_note"]
    assert data["far"] == pytest.approx(0.01 / 86400)
    assert "resolution limit" in result.stdout and "joint FAR" in result.stdout


def readme_block(heading: str) -> str:
    """The first ```bash block after ``heading`` in README.md."""
    from conftest import REPO

    text = (REPO / "README.md").read_text()
    after = text[text.index(heading):]
    return after.split("```bash\n", 1)[1].split("```", 1)[0]


def run_readme(block: str, tmp_path, **env) -> subprocess.CompletedProcess:
    """Run README commands with bash -e in a checkout directory beside ../shared/data."""
    from conftest import SHARED_DATA

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(SHARED_DATA)
    checkout = tmp_path / "checkout"
    checkout.mkdir(exist_ok=True)
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    return subprocess.run(["bash", "-e", "-c", block], cwd=checkout, capture_output=True,
                          text=True, timeout=1500,
                          env={**os.environ, "PATH": path, "PYTHONWARNINGS": "ignore", **env})


@pytest.mark.parametrize("heading", ["### One significance from files",
                                     "### Background populations and the p-value"])
def test_readme_examples_run_as_written(heading, tmp_path):
    shared_path("gw_skymaps", S251112CM)  # fails, not skips, in CI when the data are missing
    block = readme_block(heading)
    done = run_readme(block, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "odds ratio" in done.stdout
    if "--trials 2000" in block:
        assert "event-specific p-value" in done.stdout
