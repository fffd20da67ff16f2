"""The documentation: the site builds with warnings as errors; the README's commands are CI's."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from support import PROJECT

ROOT = PROJECT
README = ROOT / "README.md"


def _build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `project` (its mkdocs.yml, from its folder) into `site`."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for item in nav:
        entry = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(entry) if isinstance(entry, list) else [entry]
    return pages


def _built(site: Path, page: str) -> Path:
    """Where mkdocs (directory URLs) puts `page`: index.md -> index.html, x.md -> x/index.html."""
    stem = page.removesuffix(".md")
    return site / ("index.html" if stem == "index" else f"{stem}/index.html")


def _readme_commands() -> list[str]:
    """The README's indented command lines, in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith("    ") and line.strip()]


def test_the_site_builds_strictly_with_every_page_of_the_nav(tmp_path):
    site = tmp_path / "site"
    result = _build(ROOT, site)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = _nav_pages(config["nav"])
    assert "index.md" in pages
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
        assert _built(site, page).is_file(), f"{page} was not built"
    # What the site includes rather than copies arrived: the README's settings table, its test
    # command, its benchmark headline, and bench/README.md.
    dagster = _built(site, "dagster.md").read_text(encoding="utf-8")
    assert "MINISCOPE_BACKEND" in dagster and "--8&lt;--" not in dagster
    index = _built(site, "index.md").read_text(encoding="utf-8")
    assert html.escape(_readme_commands()[1], quote=False) in index
    benchmarks = _built(site, "benchmarks.md").read_text(encoding="utf-8")
    assert "3.96x" in benchmarks and "Listing sessions and one sensor tick" in benchmarks


def test_a_broken_link_an_unknown_anchor_or_a_page_outside_the_nav_fails_the_build(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copy(README, project)
    (project / "bench").mkdir()
    shutil.copy(ROOT / "bench" / "README.md", project / "bench")
    assert _build(project, tmp_path / "clean").returncode == 0  # the copy alone builds
    with (project / "docs" / "index.md").open("a", encoding="utf-8") as index:
        index.write("\n[gone](no-such-page.md) [nowhere](dagster.md#no-such-anchor)\n")
    (project / "docs" / "orphan-page.md").write_text("# Orphan\n", encoding="utf-8")
    result = _build(project, tmp_path / "broken")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for name in ("no-such-page.md", "no-such-anchor", "orphan-page.md"):
        assert name in output, output


def test_the_readme_starts_with_the_demo_and_the_test_command_ci_runs():
    commands = _readme_commands()
    demo, test = commands[0], commands[1]
    lines = README.read_text(encoding="utf-8").splitlines()
    assert [line.strip() for line in lines[:10] if line.startswith("    ")] == [demo, test]
    assert demo.endswith("miniscope-dagster demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    body = re.search(r"^readme_test_command\(\) \{\n(.*?)\n\}$", ci, re.M | re.S)
    assert body, ".ci/run defines no readme_test_command"
    assert body.group(1).strip() == test
    assert re.search(r"^readme_test_command$", ci, re.M), ".ci/run never calls it"


def test_the_readme_links_reach_files_of_the_repository():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, missing
