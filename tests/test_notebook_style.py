"""Notebook form as the rendered book shows it.

Code width, the hidden install cell, the Open-in-Colab badge and a worked solution per
exercise: they state what the chapters must satisfy, so that the next edit cannot regress.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINE = 88  # wider lines are cut off in the rendered HTML


EXERCISE_ITEM = re.compile(r"^(\d+)\. ", re.MULTILINE)
SOLUTION = re.compile(r"^:::\{dropdown\} Solution to exercise (\d+)\s*$", re.MULTILINE)


def code_cells(path: Path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_lines_fit_the_page(path):
    wide = [
        f"cell {i}: {len(line)} chars: {line[:60]}..."
        for i, cell in enumerate(code_cells(path))
        for line in cell.source.splitlines()
        if len(line) > MAX_CODE_LINE
    ]
    assert not wide, f"{path.name}: code lines over {MAX_CODE_LINE} characters:\n" + "\n".join(wide)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_install_cell_is_hidden_from_the_page(path):
    install = [c for c in code_cells(path) if "colab-install" in c.metadata.get("tags", [])]
    assert install, f"{path.name}: no cell tagged colab-install"
    assert all("remove-cell" in c.metadata["tags"] for c in install), (
        f"{path.name}: the Colab install cell must also be tagged remove-cell "
        "(the notebook keeps it; the page does not show it)"
    )


def colab_badge(notebook: Path) -> str:
    """The badge line the notebook must carry, built from _config.yml's repository."""
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["repository"]
    address = repository["url"].removeprefix("https://github.com/").rstrip("/")
    # the badge image is served from the book (an external one cannot load offline)
    return (
        "[![Open in Colab](../book/_static/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{address}/blob/{repository['branch']}/"
        f"notebooks/{notebook.name})"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_open_in_colab_badge_under_the_title(path):
    cells = nbformat.read(path, as_version=4).cells
    title = next((c for c in cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
    assert title is not None, f"{path.name}: no markdown cell starting with '# N. Title'"
    lines = title.source.splitlines()
    assert len(lines) > 1 and lines[1] == colab_badge(path), (
        f"{path.name}: the second line of the title cell must be the Colab badge\n"
        f"{colab_badge(path)}\nfound: {lines[1] if len(lines) > 1 else '(nothing)'}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_worked_solution(path):
    cells = nbformat.read(path, as_version=4).cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises")]
    assert starts, f"{path.name}: no markdown cell starting with '## Exercises'"
    for start in starts:
        exercises = [int(n) for n in EXERCISE_ITEM.findall(cells[start].source)]
        assert exercises == list(range(1, len(exercises) + 1)) and exercises, (
            f"{path.name}: the Exercises cell must number its exercises 1, 2, ...; found {exercises}"
        )
        solved, after = [], cells[start + 1 :]
        for k, cell in enumerate(after):
            if cell.cell_type == "markdown":
                found = SOLUTION.findall(cell.source)
                if not found:
                    break
                assert cell.source.rstrip().endswith(":::"), (
                    f"{path.name}: solution {found} does not close its dropdown with ':::'"
                )
                solved += [int(n) for n in found]
            else:
                assert k > 0 and after[k - 1].cell_type == "markdown", (
                    f"{path.name}: a solution code cell must follow its solution dropdown"
                )
                assert "hide-cell" in cell.metadata.get("tags", []), (
                    f"{path.name}: the code cell after solution {solved[-1]} must be tagged hide-cell"
                )
        assert solved == exercises, (
            f"{path.name}: exercises {exercises} need one ':::{{dropdown}} Solution to exercise N' "
            f"cell each, right after the list, in order; found {solved}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_an_id(path):
    # nbformat warns today and will refuse tomorrow; a cell pasted from an old notebook
    # comes without one (fix: nbformat.validator.normalize)
    import json

    cells = json.loads(path.read_text(encoding="utf8"))["cells"]
    missing = [i for i, cell in enumerate(cells) if "id" not in cell]
    assert not missing, f"{path.name}: cells without an id: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_drawn_inline_whatever_the_backend(path):
    # CI sets MPLBACKEND=Agg: without the magic a chapter's figures vanish from the book
    first = next(c for c in code_cells(path) if "colab-install" not in c.metadata.get("tags", []))
    assert first.source.startswith("%matplotlib inline"), (
        f"{path.name}: the first code cell after the install cell must start with %matplotlib inline"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_page_helper_is_loaded_first(path):
    # warnings once per kind without module paths, alt text on figures (chapter_aids.page)
    first = next(c for c in code_cells(path) if "colab-install" not in c.metadata.get("tags", []))
    assert first.source.splitlines()[1:2] == ["%load_ext gsa_utils.chapter_aids.page"], (
        f"{path.name}: the second line of the first code cell must be %load_ext gsa_utils.chapter_aids.page"
    )


def test_colab_badge_image_is_in_the_book():
    assert (ROOT / "book/_static/colab-badge.svg").read_text(encoding="utf8").startswith("<svg")


#: Modules a chapter may import without an extra: gsa-utils' own dependencies (pyproject.toml)
#: by module name, and what Colab's Python always has.
DEPENDENCY_MODULES = {
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "sklearn",
    "matplotlib",
    "seaborn",
    "cv2",
    "tqdm",
    "pandas",
    "pytorch_grad_cam",
    "gsa_utils",
    "IPython",
}
#: What a chapter's code needs beyond those, and the extra of gsa-utils that installs it.
EXTRA_FOR_MODULE = {"medmnist": "medmnist", "gsa_utils.data.medmnist": "medmnist", "pydicom": "dicom"}


def chapter_code(path: Path) -> tuple[str, str]:
    """(the install cell's source, every other code cell's source without magics)."""
    cells = code_cells(path)
    install = "\n".join(c.source for c in cells if "colab-install" in c.metadata.get("tags", []))
    code = "\n".join(
        "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for c in cells
        if "colab-install" not in c.metadata.get("tags", [])
    )
    return install, code


def imported_modules(code: str) -> set[str]:
    import ast

    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def needed_extras(code: str) -> set[str]:
    """The extras a chapter's code needs: by its imports, and medmnist to load RetinaMNIST."""
    extras = {
        extra
        for module in imported_modules(code)
        for prefix, extra in EXTRA_FOR_MODULE.items()
        if module == prefix or module.startswith(prefix + ".")
    }
    if '"retinamnist"' in code:
        extras.add("medmnist")
    return extras


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_install_cell_installs_what_the_chapter_imports(path):
    import sys

    install, code = chapter_code(path)
    outside = {m.split(".")[0] for m in imported_modules(code)} - set(sys.stdlib_module_names) - DEPENDENCY_MODULES
    outside -= {m.split(".")[0] for m in EXTRA_FOR_MODULE}
    assert not outside, f"{path.name} imports {sorted(outside)}: neither a dependency of gsa-utils nor an extra"
    spec = re.search(r'"gsa-utils(?:\[([\w,\s-]+)\])? @ git\+(\S+)"', install)
    assert spec, f"{path.name}: the install cell does not pip-install gsa-utils from the repository"
    installed = {e.strip() for e in (spec.group(1) or "").split(",") if e.strip()}
    missing = needed_extras(code) - installed
    assert not missing, f"{path.name}: its install cell must install gsa-utils[{','.join(sorted(missing))}]"
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["repository"]["url"]
    assert spec.group(2) == repository, f"{path.name}: installs from {spec.group(2)}, _config.yml says {repository}"
    if "medmnist" in needed_extras(code):
        assert re.search(r'load_medmnist\("retinamnist".*download=True', install), (
            f"{path.name} uses RetinaMNIST: its install cell must download it on Colab"
        )


def test_install_cell_check_sees_a_missing_extra():
    assert needed_extras("from gsa_utils.data.medmnist import load_medmnist") == {"medmnist"}
    assert needed_extras('ds = load_dataset("retinamnist", 28)') == {"medmnist"}
    assert needed_extras("import numpy as np") == set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_ends_with_a_multi_line_call_silenced_by_a_semicolon(path):
    # IPython shows the value of a call spanning several lines even after ';', and the
    # inline backend shows its figure again: the chapter showed its figures twice
    import ast

    for i, cell in enumerate(code_cells(path)):
        if "colab-install" in cell.metadata.get("tags", []):
            continue  # its %pip line sits inside an if: not Python once the magic is removed
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        body = ast.parse(code).body if code.strip() else []
        last = body[-1] if body else None
        assert not (isinstance(last, ast.Expr) and last.end_lineno > last.lineno and code.rstrip().endswith(";")), (
            f"{path.name}, code cell {i}: end with plt.show() or an assignment instead of ';'"
        )
