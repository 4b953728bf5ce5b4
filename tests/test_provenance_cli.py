"""`llama provenance`: records as text and JSON, the product graph, and --verify on a real event
(MS181101ab, multi-order map, real IC40 tracks shifted in time; see render_helpers)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import REPO
from render_helpers import add_event, build, clean_settings, neutrino_source, write_populations
from test_cli import assert_one_line_error, llama

from llama.io.storage import sha256_file
from llama.tasks import (
    GcnNotice,
    NeutrinoList,
    ScatterPlot,
    Significance,
    SubthresholdPipeline,
    Summary,
)

EVENT = "MS181101ab"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """MS181101ab built with SubthresholdPipeline; the environment stays set for the tests."""
    root = tmp_path_factory.mktemp("provenance")
    with pytest.MonkeyPatch.context() as mp:
        clean_settings(mp, root / "out")
        write_populations(root / "populations.h5")
        mp.setenv("LLAMA_POPULATIONS", str(root / "populations.h5"))
        event = add_event(root / "out" / "current_run", EVENT)
        mp.setenv("LLAMA_NEUTRINO_SOURCE", str(neutrino_source(root / "nu.json", [event])))
        build(SubthresholdPipeline(eventid=EVENT))
        yield event


@pytest.fixture
def event(built, tmp_path) -> Path:
    """A private copy of the built event (its run directory in tmp_path)."""
    import shutil

    copy = tmp_path / "run" / EVENT
    shutil.copytree(built, copy)
    return copy


def test_one_product_as_text_and_json(built):
    text = llama("provenance", built, Summary.filename, check=True).stdout
    record = json.loads(llama("provenance", built, "Summary", "--json", check=True).stdout)
    assert list(record) == [Summary.filename]
    summary = record[Summary.filename]
    assert summary["sha256"] == sha256_file(built / Summary.filename)
    for name, entry in summary["inputs"].items():
        assert f"  {name}  sha256 {entry['sha256']}" in text
    for key in ("llama_version", "python", "host", "finished_utc"):
        assert f"{key}" in text and str(summary[key]) in text
    both = json.loads(llama("provenance", built, ScatterPlot.filenames[1], "--json",
                            check=True).stdout)
    assert sorted(both) == sorted(ScatterPlot.filenames)  # one task, two files


def test_listing_and_product_graph(built):
    listing = llama("provenance", built, check=True).stdout.splitlines()
    assert any(line.startswith("Summary") and "ok " in line for line in listing)
    graph = json.loads(llama("provenance", built, "--graph", "--json", check=True).stdout)
    tasks = [node["task"] for node in graph["nodes"]]
    assert tasks.index("Significance") < tasks.index("ScatterPlot") < tasks.index("Summary")
    edges = {tuple(edge) for edge in graph["edges"]}
    assert {("ScatterPlot", "Summary"), ("Significance", "GcnNotice"),
            ("NeutrinoList", "Significance"), ("GwSkymap", "ScatterPlot")} <= edges
    built_nodes = [n for n in graph["nodes"] if n["task"] != "SignificanceOPA"]
    assert all(n["up_to_date"] for n in built_nodes)
    drawing = llama("provenance", built, "--graph", check=True).stdout
    assert "Summary" in drawing and "<- Significance, SkymapInfo, ScatterPlot" in drawing


def readme_commands() -> list[list[str]]:
    """The `llama provenance` lines of the README's section on these products, as argv."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Products for people and peers"):]
    block = section[section.index("```bash\n") + 8 : section.index("```\n", section.index("```bash"))]
    return [shlex.split(line.split("#")[0])[1:] for line in block.splitlines()
            if line.startswith("llama provenance")]


def test_readme_examples_run_and_verify_passes_on_a_fresh_event(built):
    commands = readme_commands()
    assert len(commands) == 5 and commands[-1][-1] == "--verify"
    outputs = []
    for argv in commands:
        argv = [str(built) if arg == "$EVENT" else arg for arg in argv]
        outputs.append(llama(*argv, check=True).stdout)
    lines = outputs[-1].splitlines()
    products = {NeutrinoList.filename, Significance.filename, Summary.filename,
                GcnNotice.filename, " + ".join(ScatterPlot.filenames)}
    for product in products:
        assert any(line.startswith(f"ok: {product}: reproduced") for line in lines), product
    notice = next(line for line in lines if GcnNotice.filename in line)
    assert "byte-identical" in notice or "declared content identical" in notice
    assert not any(line.startswith("FAILED") for line in lines)
    assert sorted(json.loads(outputs[2])) == sorted(ScatterPlot.filenames)


def test_verify_fails_naming_the_product_and_the_input_edited_by_hand(event):
    listed = json.loads((event / NeutrinoList.filename).read_text())
    listed["triggers"][0]["ra"] += 1.0
    (event / NeutrinoList.filename).write_text(json.dumps(listed, indent=2))
    result = llama("provenance", event, Significance.filename, "--verify")
    assert_one_line_error(result, "llama provenance", Significance.filename,
                          f"input {NeutrinoList.filename} changed")


def test_verify_fails_when_the_product_itself_was_edited(event):
    notice = json.loads((event / GcnNotice.filename).read_text())
    notice["pval_bayesian"] = 0.001
    (event / GcnNotice.filename).write_text(json.dumps(notice))
    result = llama("provenance", event, "GcnNotice", "--verify")
    assert_one_line_error(result, GcnNotice.filename, "was changed after it was made",
                          "recomputed differs")


def test_bad_input_is_one_line(tmp_path, built):
    assert_one_line_error(llama("provenance", tmp_path / "nowhere"), "not an event directory")
    assert_one_line_error(llama("provenance", built, "no-such-product.pdf"),
                          "no product 'no-such-product.pdf'", Summary.filename)
