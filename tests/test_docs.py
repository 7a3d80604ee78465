"""The README and docs/ hold together: size, links, anchors, the CI command, one page per method.

Fast and offline: it reads Markdown files and the method registry, and runs no pipeline.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines, fence = [], ""
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        lines.append(line)
    return lines


def _links(path: Path) -> list[str]:
    """Targets of every inline link, image and reference definition in ``path``."""
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        ref = REFERENCE.match(line)
        if ref:
            targets.append(ref.group(1))
            continue
        targets += LINK.findall(INLINE_CODE.sub(lambda m: m.group(0)[0] * 2, line))
    return targets


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercased, punctuation dropped, spaces -> -."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links -> text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*+|~~)", "", text).lower()
    kept = "".join(
        ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in {"L", "M", "N"}
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub does (-1, -2)."""
    seen: dict[str, int] = {}
    result = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section of a Markdown text."""
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def test_slugs_follow_github_rules() -> None:
    assert github_slug("4.6 pretrain fallback and evaluate") == "46-pretrain-fallback-and-evaluate"
    assert github_slug("dcflow — robust deep clustering") == "dcflow--robust-deep-clustering"
    assert github_slug("The `Method` class, [linked](x.md)!") == "the-method-class-linked"
    assert github_slug("4.4.4 σ, the weight") == "444-σ-the-weight"


def test_link_parser_skips_code_and_keeps_anchors(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "[a](x.md#top) ![img](i.png) `[no](code.md)` [`code text`](y.md)\n"
        "```\n[no](fenced.md)\n```\n[ref]: z.md\n# Top\n## Top\n",
        encoding="utf-8",
    )
    assert _links(page) == ["x.md#top", "i.png", "y.md", "z.md"]
    assert anchors(page) == {"top", "top-1"}


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the limit is 200"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if not dest.is_file():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and unquote(anchor).lower() not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_rel(dest)}")
    assert not broken, f"{_rel(page)}: " + "; ".join(broken)


def test_screenshots_are_linked() -> None:
    linked = {
        (page.parent / t.partition("#")[0]).resolve()
        for page in PAGES
        for t in _links(page)
        if not EXTERNAL.match(t)
    }
    unlinked = [_rel(p) for p in sorted(DOCS.glob("*.png")) if p.resolve() not in linked]
    assert not unlinked, f"screenshots no page shows: {unlinked}"


def _ci_test_command() -> str:
    """The README test command as ``.ci/run`` runs it (continuations joined, error handler cut)."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("python3 -m venv .venv &&"))
    command = ""
    for line in lines[start:]:
        command += line.rstrip()
        if not command.endswith("\\"):
            break
        command = command[:-1].rstrip() + " "
    return " ".join(command.split(" || ")[0].split())


def test_second_quickstart_command_is_what_ci_runs() -> None:
    quickstart = _section(README.read_text(encoding="utf-8"), "Quickstart")
    blocks = re.findall(r"^```(?:bash|sh)?\s*\n(.*?)^```", quickstart, re.M | re.S)
    assert len(blocks) >= 2, "the Quickstart section needs its two command blocks"
    assert blocks[1].strip() == _ci_test_command()


def test_every_method_has_a_page_and_a_readme_row() -> None:
    from dcflow.methods.registry import method_names

    table = _section(README.read_text(encoding="utf-8"), "Methods and stages")
    rows = set()
    for line in table.splitlines():
        if line.startswith("|"):
            first = line.strip("|").split("|")[0]
            rows.add(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", first).strip().strip("`"))
    methods = [m for m in method_names() if not m.startswith("toy-")]
    assert methods
    missing_pages = [m for m in methods if not (DOCS / "methods" / f"{m}.md").is_file()]
    missing_rows = [m for m in methods if m not in rows]
    assert not missing_pages, f"no docs/methods/<name>.md for {missing_pages}"
    assert not missing_rows, f"no row in the README's method table for {missing_rows}"
