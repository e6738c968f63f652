"""Sphinx extension for the gsa-book: generated pages and the shared notebook cache.

At the start of a build it

* writes ``book/_generated/profiles.md``, the profile table of ``book/running.md``, from
  ``gsa_utils.profiles.PROFILES`` (so the page cannot disagree with the code);
* writes ``book/_generated/map_stability.md`` from the runs recorded by
  ``benchmarks/map_stability.py`` in ``benchmarks/results/map_stability/`` (the numbers of
  ``book/map_stability.md`` are those files, summarised at build time);
* removes cached notebooks that ran under another profile, library or torch
  (``nbcache.prune_stale``), then writes ``book/_generated/status.md``: the build's profile,
  where each chapter's outputs and data come from, package versions and the hardware;
* writes ``book/_generated/course.md``, the session plan of ``book/course.md``, with each
  chapter's time as measured for this build (the times the status page shows).

Figures get the alt text their output carries (``_alt_from_output``).

MathJax 3 is served from the book (``.mathjax/``, installed from npm by ``make book``), not
from a CDN that CI and offline readers cannot reach. At the end of a build it is copied into
``_static/mathjax``, and notebooks the build executed itself are stamped with the build's
fingerprint. It also removes two console errors every page had (``_page_fixes``); ``make
browser-test`` checks that pages have none.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import nbcache

GENERATED = nbcache.ROOT / "book" / "_generated"
#: MathJax 3 as npm installs it (``make mathjax``; the Makefile pins the version), and the
#: parts of it the book serves.
MATHJAX = nbcache.ROOT / ".mathjax" / "node_modules" / "mathjax" / "es5"
MATHJAX_PARTS = ("tex-mml-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")
STATUS_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "jupyter-book",
    "myst-nb",
    "jupyter-cache",
    "sphinx",
    "nbval",
)


def profile_settings() -> dict[str, list[str]]:
    """Each setting of every profile in ``gsa_utils.profiles.PROFILES``, as text, by setting."""
    from gsa_utils.profiles import PROFILES

    profiles = list(PROFILES.values())

    def row(values) -> list[str]:
        return [str(v) for v in values]

    return {
        "image size": row(f"{p.image_size} px" for p in profiles),
        "epochs": row(p.fit.epochs for p in profiles),
        "cut-off epoch E": row(p.fit.cutoff_epoch for p in profiles),
        "backbone": row(
            f"`{p.backbone}` ({'ImageNet-pretrained' if p.pretrained else 'from scratch'})" for p in profiles
        ),
        "backbones compared": row(", ".join(f"`{b}`" for b in p.backbones) for p in profiles),
        "K (pixel-CNN channels)": row(p.hidden_channels for p in profiles),
        "lambda (L1 weight)": row(f"{p.fit.l1_weight:g}" for p in profiles),
        "batch, Adam lr, weight decay": row(
            f"{p.fit.batch_size}, {p.fit.lr:g}, {p.fit.weight_decay:g}" for p in profiles
        ),
        "training images": row("all" if p.n_train is None else p.n_train for p in profiles),
        "seeds": row(len(p.seeds) for p in profiles),
        "GSA recipe (how the map is built)": row(f"`{p.recipe}`" for p in profiles),
        "map training options": row(
            "none (the paper's schedule)"
            if p.fit.pixel_cnn_lr is None and not p.fit.map_warmup_epochs
            else f"pixel-CNN lr {p.fit.pixel_cnn_lr:g}, map held {p.fit.map_warmup_epochs} epochs"
            for p in profiles
        ),
    }


def profile_table() -> str:
    """Markdown table: one column per profile of ``gsa_utils.profiles.PROFILES``."""
    from gsa_utils.profiles import PROFILES

    lines = ["| setting | " + " | ".join(f"`{name}`" for name in PROFILES) + " |", "|---|" + "---|" * len(PROFILES)]
    lines += [f"| {setting} | " + " | ".join(values) + " |" for setting, values in profile_settings().items()]
    return "\n".join(lines) + "\n"


STABILITY_RESULTS = nbcache.ROOT / "benchmarks" / "results" / "map_stability"
CANDIDATE_RESULTS = nbcache.ROOT / "benchmarks" / "results" / "map_candidates"


def _data_line(data: dict) -> str:
    shape = "×".join(str(n) for n in data["image_shape"])
    return f"{data['name']}: {data['source']} data, {data['n_train']} train / {data['n_test']} test images of {shape}"


def stability_tables(
    folder: Path = STABILITY_RESULTS, figures: Path = GENERATED, prefix: str = "map_stability", verdict: bool = True
) -> str:
    """Markdown: two tables and a figure of maps per recorded ``benchmarks/map_stability.py`` run file.

    Each file's first line holds the settings its runs used; every following line is one
    run. The summary is :func:`gsa_utils.chapter_aids.stability_view.summarise_stability`, as the script
    prints it; the figure (written to ``figures``) shows the first seed's final map of every
    GSA variant on the fixed scale [0, 1] and stretched to its own range. ``verdict`` adds the
    recommended recipe's verdict line under each file's tables (the page states it once, for the
    map-stability runs, not again for the candidates).
    """
    import json

    from gsa_utils.chapter_aids.stability_view import summarise_stability, verdict_line
    from gsa_utils.protocol import format_p

    def num(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    parts = []
    for path in sorted(folder.glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
        settings, runs = lines[0]["settings"], lines[1:]
        summaries = summarise_stability(runs)
        parts += [
            f"### {settings['dataset']}, `{settings['backbone']}`",
            "",
            f"{_data_line(settings['data'])}. {settings['epochs']} epochs, E = {settings['cutoff']}, "
            f"{settings['image_size']} px, Adam lr {settings['lr']:g}, K = {settings['hidden_channels']}. "
            f"File: `{path.relative_to(nbcache.ROOT).as_posix()}`.",
            "",
            "| variant | seeds | test accuracy | p vs vanilla | collapsed | flat | phase-1 step |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in summaries:
            p = "-" if s.p_vs_reference != s.p_vs_reference else format_p(s.p_vs_reference).removeprefix("p = ")
            p = p.removeprefix("p ")  # "< 0.001"
            has_map = s.map_mean is not None
            parts.append(
                f"| {s.variant} | {s.runs} | {s.accuracy_mean:.3f} ± {s.accuracy_sd:.3f} | {p} "
                f"| {s.collapsed} of {s.runs} | {f'{s.flat} of {s.runs}' if has_map else '-'} "
                f"| {num(s.phase1_ratio, 2)}× |"
            )
        mapped = [s for s in summaries if s.map_mean is not None]
        if mapped:
            parts += [
                "",
                "| variant | map contrast | saturated share | map ROC-AUC | faithfulness gap: map / random map |",
                "|---|---|---|---|---|",
            ]
            for s in mapped:
                contrast = "-" if s.contrast_mean is None else f"{s.contrast_mean:.2f} ± {s.contrast_sd or 0:.2f}"
                auc = "-" if s.map_auc_mean is None else f"{s.map_auc_mean:.2f} ± {s.map_auc_sd or 0:.2f}"
                gap = "-" if s.faith_gap_mean is None else f"{s.faith_gap_mean:.3f} / {num(s.faith_gap_random_mean)}"
                parts.append(f"| {s.variant} | {contrast} | {num(s.saturated, 2)} | {auc} | {gap} |")
        picture = stability_maps_figure(settings, runs, figures / f"{prefix}_{path.stem}.png")
        if picture is not None:
            parts += [
                "",
                f"```{{figure}} {picture.relative_to(figures.parent).as_posix()}",
                f":alt: Final attention maps of each GSA variant on {settings['dataset']}, seed "
                f"{min(r['seed'] for r in runs)}, on the fixed scale 0 to 1 and "
                "stretched to each map's own range",
                "",
                f"{settings['dataset']}: the first seed's final map of every GSA variant. Top row: the "
                "fixed scale [0, 1], what the image CNN gets. Bottom row: each map STRETCHED to its own "
                "range, which shows the pattern but makes a flat map look sharp.",
                "```",
            ]
        line = verdict_line(summaries) if verdict else None
        parts += ["", f"`{line}`" if line else "", ""]
    return "\n".join(parts) if parts else "No recorded runs.\n"


def stability_maps_figure(settings: dict, runs: list[dict], out: Path) -> Path | None:
    """Draw the first seed's final map of every variant that recorded one; ``None`` if none did."""
    import numpy as np

    seed = min(r["seed"] for r in runs)
    maps = {r["variant"]: np.asarray(r["map"], dtype=float) for r in runs if r["seed"] == seed and "map" in r}
    if not maps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(maps), figsize=(2.6 * len(maps) + 1.2, 5.4), squeeze=False)
    for col, (variant, amap) in enumerate(maps.items()):
        run = next(r for r in runs if r["seed"] == seed and r["variant"] == variant)
        stretched = (amap - amap.min()) / max(float(amap.max() - amap.min()), 1e-12)
        fixed = axes[0, col].imshow(amap, cmap="magma", vmin=0, vmax=1)
        loose = axes[1, col].imshow(stretched, cmap="magma", vmin=0, vmax=1)
        auc = f", AUC {run['map_auc']:.2f}" if "map_auc" in run else ""
        axes[0, col].set_title(
            f"{variant.replace('+', chr(10) + '+')}\ncontrast {run['map_contrast']:.2f}{auc}", fontsize=8
        )
        for row in (0, 1):
            axes[row, col].axis("off")
    fig.colorbar(fixed, ax=axes[0].tolist(), shrink=0.8, label="map value")
    fig.colorbar(loose, ax=axes[1].tolist(), shrink=0.8, label="STRETCHED: own min-max")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        return "unknown"


def _gpu() -> str:
    import torch

    if not torch.cuda.is_available():
        return "none (CUDA not available)"
    props = torch.cuda.get_device_properties(0)
    return f"{props.name}, {props.total_memory / 2**30:.0f} GiB"


def status_page(prints: dict[str, str], cached: dict[str, float], chapters: list[Path], mode: str = "cache") -> str:
    """Markdown for the status page's generated part."""
    from gsa_utils.profiles import get_profile

    lines = [
        f"This build ran every chapter in the **`{prints['profile']}`** profile: {get_profile().describe()}.",
        "",
        "| chapter | outputs from |",
        "|---|---|",
    ]
    for chapter in chapters:
        seconds = cached.get(str(chapter.resolve()))
        if seconds is not None:
            source = f"the test run (nbval), {seconds:.0f} s, reused from the cache"
        elif mode == "off":
            source = "the notebook file as committed (execution was off for this build)"
        else:
            source = "executed by this book build"
        lines.append(f"| `{chapter.name}` | {source} |")
    lines += [
        "",
        f"Library source digest (`gsa_utils`): `{prints['gsa_utils'][:12]}`.",
        "",
        *data_sources(),
        "",
        "| package | version |",
        "|---|---|",
        f"| Python | {platform.python_version()} |",
    ]
    for package in STATUS_PACKAGES:
        try:
            lines.append(f"| {package} | {metadata.version(package)} |")
        except metadata.PackageNotFoundError:
            lines.append(f"| {package} | not installed |")
    lines += [
        "",
        "| hardware | |",
        "|---|---|",
        f"| system | {platform.system()} {platform.release()} ({platform.machine()}) |",
        f"| CPU | {_cpu_model()}, {os.cpu_count()} logical cores |",
        f"| memory | {_memory_gib()} |",
        f"| GPU | {_gpu()} |",
    ]
    return "\n".join(lines) + "\n"


def data_sources() -> list[str]:
    """Markdown lines: the data folder's rule and, per real data set, what the chapters read.

    Paths are written from the data folder (:func:`gsa_utils.paths.shown_path`), never as
    the build machine's folders.
    """
    from gsa_utils.data.registry import REAL_NAMES, plan_data
    from gsa_utils.paths import data_dir_rule, shown_path

    lines = [f"Data folder: {data_dir_rule()}.", "", "| data set | what the chapters read |", "|---|---|"]
    for name in REAL_NAMES:
        plan = plan_data(name)
        if plan.kind == "real":
            source = f"the real data, from `{shown_path(plan.path)}`"
        else:
            source = f"a synthetic stand-in: {plan.reason}"
        lines.append(f"| {name} | {source} |")
    return lines


@dataclass(frozen=True)
class Session:
    """One session of the course plan: its chapters and pages, what is learned, what it needs."""

    title: str
    docs: tuple[str, ...]
    learn: str
    prerequisites: str


#: The course plan of ``book/course.md``: every chapter and page of the book, in order.
SESSIONS = (
    Session(
        "1. The idea",
        ("notebooks/01_structured_images", "notebooks/02_pixel_representation", "notebooks/03_pixel_cnn"),
        "{term}`structured image`s, the {term}`pixel representation`, the {term}`pixel CNN` and its {term}`map`",
        "Python, PyTorch tensors, convolutions",
    ),
    Session(
        "2. Training it",
        ("notebooks/04_combined_loss", "notebooks/05_two_phase_training"),
        "the {term}`combined loss`, {term}`lambda`, {term}`saturation` and {term}`collapse`, "
        "{term}`two-phase training`, the {term}`cut-off epoch E` and the {term}`recipe`",
        "session 1; cross-entropy, gradient descent",
    ),
    Session(
        "3. Real data",
        (
            "notebooks/06_idrid",
            "notebooks/07_jaffe",
            "notebooks/08_your_own_data",
            "notebooks/09_retinamnist",
            "book/map_stability",
        ),
        "the method on IDRiD, JAFFE, OCT-style maps and RetinaMNIST; bringing your own data set; "
        "how often the map collapses over many seeds",
        "sessions 1-2 (chapter 6 introduces the helpers 7-9 use)",
    ),
    Session(
        "4. Reproducing the paper",
        ("notebooks/10_baselines", "notebooks/11_results"),
        "pixel models, the {term}`L1 baseline`, local attention; the paper's {term}`protocol`, "
        "{term}`Welch's t-test`, Table 2",
        "sessions 1-3",
    ),
    Session(
        "5. Reading attention maps",
        ("notebooks/12_attention_maps", "notebooks/13_sensitivity_and_design"),
        "GSA maps beside {term}`Grad-CAM`, Grad-CAM++ and ResAttNet masks; the {term}`pointing game`, "
        "{term}`faithfulness`; how K, lambda and E change the map",
        "sessions 1-4",
    ),
)
#: Pages outside the sessions: read before the first one, or kept at hand.
REFERENCE_PAGES = (
    "book/running",
    "book/many_machines",
    "book/course",
    "book/troubleshooting",
    "book/glossary",
    "book/status",
    "book/bibliography",
)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def course_table(times: dict[str, float]) -> str:
    """Markdown: the course plan, with each chapter's measured time.

    ``times`` holds seconds by document name (``"notebooks/05_two_phase_training"``), as the
    status page shows them; a chapter without one is marked as not measured in this build.
    """
    lines = [
        "| session | chapters and pages | what students learn | CPU time, measured for this build | prerequisites |",
        "|---|---|---|---|---|",
    ]
    for session in SESSIONS:
        links, parts, total = [], [], 0.0  # total: None once a chapter has no time
        for doc in session.docs:
            number = Path(doc).name.split("_", 1)[0]
            links.append(f"{{doc}}`{int(number) if number.isdigit() else 'map stability'} <../{doc}>`")
            if doc.startswith("notebooks/"):
                seconds = times.get(doc)
                parts.append(f"{number}: {_duration(seconds)}" if seconds is not None else f"{number}: not measured")
                total = None if seconds is None or total is None else total + seconds
        measured = "; ".join(parts) + (f" (total {_duration(total)})" if len(parts) > 1 and total else "")
        lines.append(
            f"| {session.title} | {', '.join(links)} | {session.learn} | {measured} | {session.prerequisites} |"
        )
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf8") != text:
        path.write_text(text, encoding="utf8")


def _chapters(app) -> list[Path]:
    source = Path(app.srcdir)
    return sorted(
        source.joinpath(doc + ".ipynb") for doc in app.project.docnames if source.joinpath(doc + ".ipynb").exists()
    )


def _config_inited(app, config) -> None:
    # One cache folder for the tests and the build, named in _config.yml, made absolute.
    config.nb_execution_cache_path = str(nbcache.cache_dir())
    if not (MATHJAX / MATHJAX_PARTS[0]).exists():
        from sphinx.errors import ConfigError

        raise ConfigError(
            f"MathJax is not installed in {MATHJAX.relative_to(nbcache.ROOT)}: run `make mathjax` "
            "(npm's mathjax package); the book serves it itself, without a CDN"
        )
    # A path relative to _static: the copy _build_finished makes.
    config.mathjax_path = "mathjax/" + MATHJAX_PARTS[0]


def copy_mathjax(static: Path) -> None:
    """Copy the parts of MathJax the pages load into ``static``/mathjax."""
    for part in MATHJAX_PARTS:
        source, target = MATHJAX / part, static / "mathjax" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


def _page_fixes(app, pagename, templatename, context, doctree) -> None:
    """Remove two console errors every page had under jupyter-book 1.x.

    sphinx-thebe adds its configuration script twice, and the second ``const
    THEBE_JS_URL`` is a SyntaxError; the theme's light/dark switch logs "Got invalid theme
    mode" because its template variable ``default_mode`` is empty. The script list is
    edited in place: a new list would lose the scripts added after this handler, MathJax's
    among them, and leave every equation as raw LaTeX.
    """
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # An inline script's filename is None or "" depending on who added it.
        key = (
            getattr(script, "filename", str(script)) or "",
            tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: handlers that run later (Sphinx's MathJax) add their scripts to this list.
    context.get("script_files", [])[:] = unique


def _alt_from_output(render_image):
    """Wrap myst-nb's image renderer: an output's own ``alt`` (its metadata) becomes the alt text.

    myst-nb reads only width and height from an output's metadata; the chapters' figures
    carry an alt text there (``gsa_utils.chapter_aids.page``). A cell's ``mystnb`` image
    options still win.
    """

    def render_image_with_alt(self, data):
        rendered = render_image(self, data)
        alt = data.output_metadata.get(data.mime_type, {}).get("alt")
        for node in rendered:
            if alt and "alt" not in node.attributes:
                node["alt"] = str(alt)
        return rendered

    render_image_with_alt.gsa_alt = True
    return render_image_with_alt


def _builder_inited(app) -> None:
    _write_if_changed(GENERATED / "profiles.md", profile_table())
    _write_if_changed(GENERATED / "map_stability.md", stability_tables())
    _write_if_changed(
        GENERATED / "map_candidates.md", stability_tables(CANDIDATE_RESULTS, prefix="map_candidates", verdict=False)
    )
    prints = nbcache.fingerprint()
    app.env.gsa_fingerprint = prints
    if app.config.nb_execution_mode == "cache":
        for uri in nbcache.prune_stale(prints):
            print(
                f"gsa_book: cached outputs of {uri} ran under another fingerprint; it will be executed again",
                file=sys.stderr,
            )
    cached = nbcache.cached_uris(prints) if app.config.nb_execution_mode == "cache" else {}
    _write_if_changed(
        GENERATED / "status.md", status_page(prints, cached, _chapters(app), app.config.nb_execution_mode)
    )
    source = Path(app.srcdir).resolve()
    times = {
        Path(uri).relative_to(source).with_suffix("").as_posix(): seconds
        for uri, seconds in cached.items()
        if Path(uri).is_relative_to(source)
    }
    _write_if_changed(GENERATED / "course.md", course_table(times))


def _build_finished(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        copy_mathjax(Path(app.outdir) / "_static")
    if exception is None and app.config.nb_execution_mode == "cache":
        nbcache.stamp_unmarked(app.env.gsa_fingerprint)


def setup(app):
    from myst_nb.core.render import NbElementRenderer

    if not getattr(NbElementRenderer.render_image, "gsa_alt", False):
        NbElementRenderer.render_image = _alt_from_output(NbElementRenderer.render_image)
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _build_finished)
    # First: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _page_fixes, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
