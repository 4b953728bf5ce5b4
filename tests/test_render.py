"""Products for people and peers (llama.render, llama.tasks.outputs) on three real sky maps:
plots, one-page summary, neutrino tables, GCN notice and circular, and the readers of our files
(ligo-followup-advocate's compose_llama, IceCube's result combiner). Events: render_helpers."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from render_helpers import (
    EVENTS,
    add_event,
    build,
    clean_settings,
    neutrino_source,
    write_populations,
)

from llama import provenance
from llama.io.neutrinos import write_llama_json
from llama.render.gcn import VOLATILE_KEYS, declared_content
from llama.render.result import R90_PER_SIGMA, read_result
from llama.render.summary import PAGE, SummaryContext, banner, numbers_text, render_summary
from llama.render.tables import neutrino_table_latex, neutrino_table_text
from llama.tasks import (
    OUTPUTS,
    GcnCircular,
    GcnNotice,
    NeutrinoList,
    NeutrinoTables,
    ScatterPlot,
    Significance,
    SubthresholdPipeline,
    Summary,
)
from llama.tasks.pipelines import DEFAULT, SUBTHRESHOLD

PNG_SIZE = (1300, 500)  # FIGSIZE (13 x 5 in) x DPI 100
POINTS = 72.0


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> dict[str, Path]:
    """The three events of render_helpers, each built with SubthresholdPipeline."""
    root = tmp_path_factory.mktemp("render")
    run = root / "out" / "current_run"
    with pytest.MonkeyPatch.context() as mp:
        clean_settings(mp, root / "out")
        write_populations(root / "populations.h5")
        mp.setenv("LLAMA_POPULATIONS", str(root / "populations.h5"))
        built = {eventid: add_event(run, eventid) for eventid in EVENTS}
        mp.setenv("LLAMA_NEUTRINO_SOURCE", str(neutrino_source(root / "nu.json", [*built.values()])))
        build(*(SubthresholdPipeline(eventid=eventid) for eventid in EVENTS))
        yield built


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of every page of a PDF written by matplotlib."""
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    pages = re.findall(rb"/Type /Page\b.*?/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data, re.S)
    return [(float(w), float(h)) for w, h in pages]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def drawn_pixels(data: bytes) -> tuple[float, int]:
    """(fraction of the PNG's pixels that are not white, number of strongly coloured pixels)."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    return float(np.mean(np.any(pixels < 0.95, axis=-1))), int(np.sum(spread > 0.3))


@pytest.mark.parametrize("eventid", list(EVENTS))
def test_plot_and_summary_render_for_three_kinds_of_sky_map(events, eventid):
    event = events[eventid]
    png = (event / "scatterplot_lvc-i3.png").read_bytes()
    assert png_size(png) == PNG_SIZE
    drawn, coloured = drawn_pixels(png)
    assert 0.03 < drawn < 0.5  # grid, map, contours, labels: not blank, not a black page
    assert coloured > 500  # the neutrinos' dt colours and the colour bar
    plot_pdf = (event / "scatterplot_lvc-i3.pdf").read_bytes()
    assert pdf_pages(plot_pdf) == [(PNG_SIZE[0] * POINTS / 100, PNG_SIZE[1] * POINTS / 100)]
    summary = (event / "summary_lvc-i3.pdf").read_bytes()
    (width, height), = pdf_pages(summary)
    assert (width, height) == pytest.approx((PAGE[0] * POINTS, PAGE[1] * POINTS), abs=0.01)
    assert len(summary) > len(png) / 2  # the plot is embedded
    for name in ScatterPlot.filenames:  # one task, two files, a record each
        record = provenance.read_record(event / name)
        assert record["task"] == "ScatterPlot" and record["outputs"] == list(ScatterPlot.filenames)
        assert record["sha256"] == provenance.storage.sha256_file(event / name)
        assert Significance.filename in record["inputs"]
    assert ScatterPlot(eventid=eventid).complete() and Summary(eventid=eventid).complete()


def test_pipelines_and_burst_result(events):
    assert set(OUTPUTS) <= SUBTHRESHOLD and not set(OUTPUTS) & DEFAULT
    burst = read_result(events["S230531f"] / Significance.filename)
    assert burst.burst and burst.distance_mpc is None
    assert "distance integrated out" in numbers_text(burst, SummaryContext())


def test_changed_plot_rebuilds_both_files_and_the_summary(events):
    event = events["MS181101ab"]
    png, pdf = (event / name for name in ScatterPlot.filenames)
    before = {p.name: p.read_bytes() for p in (png, pdf, event / Summary.filename)}
    pdf.write_bytes(b"%PDF-1.4 edited by hand\n")
    assert not ScatterPlot(eventid="MS181101ab").complete()
    assert "scatterplot_lvc-i3.pdf: output changed" in ScatterPlot(eventid="MS181101ab").up_to_date()[1]
    build(Summary(eventid="MS181101ab"))
    after = {p.name: p.read_bytes() for p in (png, pdf, event / Summary.filename)}
    assert after == before  # same inputs, same bytes again: deterministic rendering


def test_neutrino_tables_text_and_latex(events):
    event = events["S230531f"]
    result = read_result(event / Significance.filename)
    text = (event / "neutrinos_lvc-i3.txt").read_text()
    latex = (event / "neutrinos_lvc-i3.tex").read_text()
    assert text == neutrino_table_text(result) and latex == neutrino_table_latex(result)
    rows = text.splitlines()[2:-1]
    assert len(rows) == len(result.neutrinos) == 7
    for row, nu in zip(rows, result.neutrinos, strict=True):
        cells = row.split()
        assert cells[0] == nu.i3event and float(cells[1]) == pytest.approx(nu.dt, abs=0.05)
        assert float(cells[5]) == pytest.approx(R90_PER_SIGMA * nu.sigma, abs=0.005)
    assert "neutrino time minus GW time" in text
    assert latex.count(r"\\") == 8 and r"\begin{tabular}" in latex
    assert all(nu.i3event.replace("_", r"\_") in latex for nu in result.neutrinos)
    assert NeutrinoTables(eventid="S230531f").complete()


def schema_validator():
    """A Draft 2020-12 validator of the LVK Nu Track Search schema, every $ref resolved from
    ../shared/data/gcn_schema (a referencing.Registry of the files; no network)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    root = shared_path("gcn_schema")
    resources = []
    for path in sorted(root.rglob("*.schema.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    registry = Registry().with_resources(resources)
    schema = json.loads((root / "gcn/notices/icecube/lvk_nu_track_search.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def test_gcn_notice_validates_against_the_schema(events):
    validator = schema_validator()
    example = json.loads(shared_path("gcn_schema/gcn/notices/icecube/"
                                     "lvk_nu_track_search.example.json").read_text())
    assert not list(validator.iter_errors(example))
    broken = {**example, "pval_bayesian": "0.05", "n_events_coincident": "2"}
    assert len(list(validator.iter_errors(broken))) == 2  # the validator does bite
    deep = {**example, "coincident_events": [{"localization": {"ra": "17.48"}}]}
    deep["coincident_events"][0]["ra"] = "north"  # Localization is applied to each event
    assert list(validator.iter_errors(deep))
    listed_somewhere = False
    for eventid, event in events.items():
        notice = json.loads((event / GcnNotice.filename).read_text())
        errors = [e.message for e in validator.iter_errors(notice)]
        assert not errors, (eventid, errors)
        output = json.loads((event / Significance.filename).read_text())
        assert set(example) - {"pval_generic", "most_probable_direction"} <= set(notice)
        ranges = notice["neutrino_flux_sensitivity_range"]
        for key, (lo, hi) in ranges.items():
            assert 0 < lo <= hi
            assert [lo, hi] == [float(f"{x:.3g}") for x in
                                output["neutrino_flux_sensitivity_range"][key]]
        assert set(ranges) == set(example["neutrino_flux_sensitivity_range"])
        assert notice["ref_ID"] == eventid and notice["pval_bayesian"] == output["p_value"]
        assert notice["n_events_coincident"] == len(output["single_neutrino"])
        assert notice["alert_tense"] == "test"  # a test event
        expected = [n for n in output["single_neutrino"] if n["p_value"] < 0.1]
        assert [e["id"] for e in notice["coincident_events"]] == [[n["i3event"]] for n in expected]
        for entry, nu in zip(notice["coincident_events"], expected, strict=True):
            assert entry["event_dt"] == pytest.approx(nu["dt"], abs=0.005)
            assert entry["localization"]["ra_dec_error"] == pytest.approx(
                2.145966 * nu["sigma"], abs=0.006)
            assert entry["event_pval_bayesian"] == nu["p_value"]
        listed_somewhere |= bool(expected)
        assert set(VOLATILE_KEYS) <= set(notice) and set(declared_content(notice)) == (
            set(notice) - set(VOLATILE_KEYS))
    assert listed_somewhere  # the p < 0.1 listing is exercised, not vacuous


def test_circular_draft_states_the_dt_sign(events):
    event = events["S230531f"]
    text = (event / GcnCircular.filename).read_text()
    result = read_result(event / Significance.filename)
    assert "S230531f" in text and "time of the track event minus the time of the GW" in text
    assert f"{result.p_value:.4g}" in text and "7 track-like events were found" in text
    flux = result.flux_sensitivity_range["flux_sensitivity"]
    assert f"from {flux[0]:.3g} to {flux[1]:.3g} GeV cm^-2" in " ".join(text.split())
    for nu in result.neutrinos:
        assert f"{nu.dt:+.2f}" in text and f"{nu.ra:.2f}" in text
    assert all(len(line) <= 79 for line in text.splitlines()[2:] if not line.startswith(" "))


class EventFiles:
    """A GraceDB client for ligo-followup-advocate that serves one of our event directories:
    the superevent record (t_0 from skymap_info.json) and the event's files, as
    ligo.gracedb.rest.GraceDb answers (objects with ``.json()``)."""

    service_url = "https://gracedb.ligo.org/api/"

    class Answer:
        def __init__(self, value):
            self.value = value

        def json(self):
            return self.value

    def __init__(self, directory: Path):
        self.directory = directory

    def superevent(self, graceid: str):
        info = json.loads((self.directory / "skymap_info.json").read_text())
        assert graceid == self.directory.name
        return self.Answer({"superevent_id": graceid, "t_0": info["event_time_gps"]})

    def files(self, graceid: str, filename: str | None = None):
        if filename is None:
            return self.Answer({p.name: p.name for p in self.directory.iterdir() if p.is_file()})
        return self.Answer(json.loads((self.directory / filename).read_text()))


def test_compose_llama_drafts_its_circular_from_our_file(events):
    from ligo.followup_advocate import compose_llama

    event = events["S230531f"]
    output = json.loads((event / Significance.filename).read_text())
    circular = compose_llama("S230531f", client=EventFiles(event))
    assert "S230531f" in circular
    lines = circular[circular.index("-----\n"):].splitlines()[1:]
    rows = [line.split() for line in lines[: len(output["inputs"]["neutrino_info"])]]
    for row, nu, ours in zip(rows, output["inputs"]["neutrino_info"],
                             output["single_neutrino"], strict=True):
        # compose_llama's dt is GW minus neutrino time: the opposite sign of ours
        assert float(row[0]) == pytest.approx(-ours["dt"], abs=0.01)
        assert row[1:4] == [f"{nu['ra']:.2f}", f"{nu['dec']:.2f}", f"{nu['sigma']:.2f}"]
        assert row[4] == f"{output['p_value']:.4f}"


def test_every_field_the_icecube_combiner_reads_is_there(events):
    for event in events.values():
        output = json.loads((event / Significance.filename).read_text())
        assert isinstance(output["p_value"], float)
        assert isinstance(output["inputs"]["neutrino_info"][0]["type"], str)
        for row in output["single_neutrino"]:
            assert isinstance(row["i3event"], str)
            for key in ("dt", "ra", "dec", "sigma", "p_value"):
                assert isinstance(row[key], float), key
        ranges = output["neutrino_flux_sensitivity_range"]
        assert set(ranges) == {"flux_sensitivity", "sensitive_energy_range"}
        for lo, hi in ranges.values():
            assert isinstance(lo, float) and isinstance(hi, float) and 0 < lo <= hi


def test_rendering_imports_nothing_heavy_into_the_significance_path(events, tmp_path):
    event = events["MS181101ab"]
    info = json.loads((event / "skymap_info.json").read_text())
    skymap = next(event.glob("*.multiorder.fits"))
    check = (
        "import sys\n"
        "import llama.tasks\n"
        "assert 'matplotlib' not in sys.modules, 'import llama.tasks'\n"
        "from llama.cli.main import main\n"
        f"code = main(['significance', '--skymap', {str(skymap)!r}, '--neutrinos', "
        f"{str(event / 'icecube_neutrino_list.json')!r}, '--event-time', "
        f"{str(info['event_time_gps'])!r}, '-o', {str(tmp_path / 'out.json')!r}])\n"
        "assert code == 0, code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or "
        "m.startswith('ligo.skymap.plot'))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.json").exists()


def test_partial_and_retracted_results_are_marked(tmp_path, monkeypatch):
    """A retraction marks the summary RETRACTED and the notice a retraction; an incomplete
    neutrino list marks the page PARTIAL RESULT; without a background population the
    p-value is n/a (null in the notice, still schema-valid)."""
    from llama.ingest import ingest_file

    clean_settings(monkeypatch, tmp_path / "out")
    monkeypatch.setenv("LLAMA_POPULATIONS", "none")  # not even the packaged populations
    run = tmp_path / "out" / "current_run"
    event = add_event(run, "MS181101ab")
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(neutrino_source(tmp_path / "nu.json", [event])))
    build(Summary(eventid="MS181101ab"), GcnNotice(eventid="MS181101ab"))
    record = provenance.read_record(event / Summary.filename)
    assert (record["partial"], record["retracted"]) == (False, False)
    notice = json.loads((event / GcnNotice.filename).read_text())
    assert notice["pval_bayesian"] is None and not list(schema_validator().iter_errors(notice))
    result = read_result(event / Significance.filename)
    assert "p-value (population): n/a" in numbers_text(result, SummaryContext())
    final = (event / Summary.filename).read_bytes()
    listed = NeutrinoList(eventid="MS181101ab")
    listed.meta_path.unlink()  # rebuilt: same list, a renewed record (new fetch time)
    build(listed)
    assert Summary(eventid="MS181101ab").complete()  # only the list's `complete` counts

    ingest_file(shared_path("gw_alerts", "voevent", "MS181101ab-5-Retraction.xml"), run_dir=run,
                role="test")
    assert not Summary(eventid="MS181101ab").complete()  # flags and skymap_info changed
    build(Summary(eventid="MS181101ab", allow_retracted=True),
          GcnNotice(eventid="MS181101ab", allow_retracted=True))
    record = provenance.read_record(event / Summary.filename)
    assert (record["partial"], record["retracted"]) == (False, True)
    assert (event / Summary.filename).read_bytes() != final
    assert json.loads((event / GcnNotice.filename).read_text())["alert_type"] == "retraction"

    plot = (event / ScatterPlot.filenames[0]).read_bytes()
    partial = SummaryContext(flags={"retracted": False}, neutrino_list_complete=False)
    complete = SummaryContext(flags={"retracted": False}, neutrino_list_complete=True)
    assert banner(partial) == "PARTIAL RESULT (neutrino list incomplete)"
    assert banner(complete) is None
    assert banner(SummaryContext(flags={"retracted": True}, neutrino_list_complete=False)) == (
        "RETRACTED / PARTIAL RESULT (neutrino list incomplete)")
    partial_page = render_summary(result, plot, partial)
    assert len(pdf_pages(partial_page)) == 1 and partial_page != render_summary(result, plot, complete)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The text of a PDF, extracted by pdftotext (poppler-utils)."""
    path = tmp_path / "extract.pdf"
    path.write_bytes(data)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          timeout=60, check=True)
    return " ".join(done.stdout.split())


def test_open_window_gives_a_partial_result_then_the_final_one(tmp_path, monkeypatch):
    """The real pipeline on a real sky map for an event 2 min ago, while the +-500 s neutrino
    window is still open; the source (real IC40 tracks shifted in time, SIMULATED timing) holds
    the tracks up to now. Summary, notice and circular are marked PARTIAL RESULT at once;
    the partial products are not verifiable; after the hold, once the source declares its
    list complete, a rerun gives the final products without the mark."""
    from astropy.time import Time
    from test_cli import assert_one_line_error, llama
    from test_tasks import ic40_stretch, sim_event

    clean_settings(monkeypatch, tmp_path / "out")
    write_populations(tmp_path / "populations.h5")
    monkeypatch.setenv("LLAMA_POPULATIONS", str(tmp_path / "populations.h5"))
    now = Time.now()
    event = sim_event(tmp_path / "out", "SIM-open", float(now.gps) - 120).directory
    tracks = ic40_stretch(float(now.utc.mjd) - 120 / 86400)
    source = tmp_path / "icecube_live.json"
    write_llama_json(tracks.select(tracks.mjd <= now.utc.mjd), source, complete=False)
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    pipeline = SubthresholdPipeline(eventid="SIM-open")
    build(pipeline)
    output = json.loads((event / Significance.filename).read_text())
    assert output["neutrino_list_complete"] is False and len(output["single_neutrino"]) == 6
    assert "PARTIAL RESULT" in pdf_text((event / Summary.filename).read_bytes(), tmp_path)
    notice = json.loads((event / GcnNotice.filename).read_text())
    assert notice["additional_info"].startswith("PARTIAL RESULT")
    assert not list(schema_validator().iter_errors(notice))
    assert "PARTIAL RESULT" in (event / GcnCircular.filename).read_text()
    refused = llama("provenance", event, Summary.filename, "--verify")
    assert_one_line_error(refused, Summary.filename, "a partial result",
                          f"{NeutrinoList.filename} was incomplete when fetched")

    window = tracks.select(np.abs(tracks.mjd - tracks.mjd[4]) <= 500 / 86400)  # [4]: dt = 0
    write_llama_json(window, source, complete=True)  # IceCube: the window is closed
    assert pipeline.complete()  # held: not fetched again yet
    monkeypatch.setenv("LLAMA_PARTIAL_HOLD_S", "0")  # the hold is over
    assert not pipeline.complete()
    build(pipeline)
    assert pipeline.complete()
    output = json.loads((event / Significance.filename).read_text())
    assert output["neutrino_list_complete"] is True and len(output["single_neutrino"]) == 7
    assert provenance.read_record(event / Significance.filename)["neutrino_list_complete"] is True
    summary = pdf_text((event / Summary.filename).read_bytes(), tmp_path)
    assert "PARTIAL" not in summary and "list complete: yes" in summary
    assert "additional_info" not in json.loads((event / GcnNotice.filename).read_text())
    assert "PARTIAL" not in (event / GcnCircular.filename).read_text()
    assert not list(event.glob(".*.tmp"))
    assert llama("provenance", event, Significance.filename, "--verify").returncode == 0


def test_notice_leaves_out_a_missing_or_malformed_flux_range():
    from llama.render.gcn import gcn_notice
    from llama.render.result import result_from_dict

    base = {"single_neutrino": [], "inputs": {"gw_skymap_info": {"graceid": "S251112cm"}}}
    good = {"flux_sensitivity": [0.032, 0.87], "sensitive_energy_range": [9.3e4, 7.7e7]}
    validator = schema_validator()
    for ranges in (None, {"flux_sensitivity": [0.032]}, {**good, "flux_sensitivity": [0.9, 0.1]},
                   {**good, "sensitive_energy_range": ["1 TeV", 1e6]}, good):
        result = result_from_dict({**base, "neutrino_flux_sensitivity_range": ranges})
        notice = gcn_notice(result, {}, "test", "2025-11-12T00:00:00.000Z")
        assert not list(validator.iter_errors(notice))
        assert notice.get("neutrino_flux_sensitivity_range") == (good if ranges is good else None)


def test_neutrino_circles_and_credible_levels_for_display():
    """The 90% circles lie at their radius from the centre (also around a pole and across
    RA 0), cut at the edge of the all-sky map; the display's credible levels equal a full sort wherever they are below 99%."""
    from llama.io.skymap import read_skymap
    from llama.io.skymap_geometry import rasterize
    from llama.render.skyplot import (
        CIRCLE_VERTICES,
        LEVEL_TAIL,
        circle_vertices,
        credible_levels,
        split_at_edge,
    )

    ra, dec, radius = np.array([10.0, 359.0, 123.0]), np.array([-20.0, 0.5, 88.0]), np.array(
        [1.5, 4.0, 5.0])
    vertices = np.radians(circle_vertices(ra, dec, radius))
    centre = np.radians(np.column_stack([ra, dec]))[:, None, :]
    cos_distance = (np.sin(vertices[..., 1]) * np.sin(centre[..., 1]) + np.cos(vertices[..., 1])
                    * np.cos(centre[..., 1]) * np.cos(vertices[..., 0] - centre[..., 0]))
    assert np.degrees(np.arccos(np.clip(cos_distance, -1, 1))) == pytest.approx(
        np.broadcast_to(radius[:, None], cos_distance.shape), abs=1e-9)
    first, last = vertices[:, 0], vertices[:, -1]  # closed on the sky (RA may differ by 360)
    assert np.allclose(np.cos(first[:, 0] - last[:, 0]), 1.0) and np.allclose(first[:, 1], last[:, 1])
    # on the all-sky map (edge at RA 360): the circle around RA 359 crosses the edge twice
    # (drawn from its north point: 3 pieces), the one around the pole once, the other never;
    # every piece stays on its side of the edge
    pieces = split_at_edge(circle_vertices(ra, dec, radius), 360.0)
    assert [len(circle) for circle in pieces] == [1, 3, 2]
    for circle in pieces:
        assert sum(len(piece) for piece in circle) == CIRCLE_VERTICES + 1
        for piece in circle:
            assert np.all((piece[:, 0] > 360.0) & (piece[:, 0] < 720.0))
            assert np.all(np.abs(np.diff(piece[:, 0])) < 180.0)  # no jump across the map

    prob = rasterize(read_skymap(shared_path("gw_skymaps", EVENTS["MS181101ab"][1])), 256).prob
    order = np.argsort(prob)[::-1]
    exact = np.empty_like(prob)
    exact[order] = np.cumsum(prob[order]) * 100.0
    levels = credible_levels(prob)
    sorted_part = exact <= 100.0 * (1.0 - LEVEL_TAIL)
    assert np.allclose(levels[sorted_part], exact[sorted_part], rtol=0, atol=1e-9)
    assert np.all(levels[~sorted_part] > 100.0 * (1.0 - LEVEL_TAIL))
