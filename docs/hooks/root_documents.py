"""MkDocs hooks: serve the repository's root documents with the site, and build pages from
README sections, so that each text has one source.

BENCHMARKS.md and RELIABILITY.md live at the repository root (they are read on the forge
too), with the figures they show under ``benchmarks/``; they become pages at the site root,
so their links to each other and to figures resolve unchanged (links to source folders become
paths in code, as below).

A page line ``<!-- readme: Heading -->`` is replaced by the README section of that heading
(up to the next heading of its level or above), one heading level up. README sections are
written for a reader at the repository root: a link to ``docs/x.md`` becomes the page
``x.md``, one to a source file its path in code (the site has no source browser). A docs page's
``../`` links to the repository root are read the same way. A heading
the README no longer has fails the build, naming the page.

A page line ``<!-- file: path -->`` is replaced by that repository file in a code block, so
the tutorial shows the example plugin the test suite runs, not a copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
ROOT_DOCUMENTS = ("BENCHMARKS.md", "RELIABILITY.md")
FIGURES = "benchmarks/*.png"
#: Source paths a README link may name, and the page that documents each.
SOURCE_PAGES = {"recommender/hookspecs.py": "hooks.md"}
INCLUDE = re.compile(r"^<!-- readme: (.+?) -->$", re.MULTILINE)
INCLUDE_FILE = re.compile(r"^<!-- file: (.+?) -->$", re.MULTILINE)
LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".cfg": "ini"}
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$")
LINK = re.compile(r"\[([^\]]+)\]\(((?!https?://|#|mailto:)[^)\s]+)\)")


def on_files(files: Files, config) -> Files:
    figures = (str(p.relative_to(ROOT)) for p in sorted(ROOT.glob(FIGURES)))
    for name in (*ROOT_DOCUMENTS, *figures):
        files.append(File(name, src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def readme_section(title: str, readme: str) -> str:
    """The README section headed ``title``, its headings one level up, links made local."""
    lines = readme.splitlines()
    fenced = False
    start = level = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            continue
        depth = len(heading.group(1))
        if start is None and heading.group(2) == title:
            start, level = i, depth
        elif start is not None and depth <= level:
            return _local("\n".join(lines[start:i]))
    if start is None:
        raise KeyError(title)
    return _local("\n".join(lines[start:]))


def _local(markdown: str, *, shift: bool = True) -> str:
    fenced = False
    out = []
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            if shift and line.startswith("##"):
                line = line[1:]
            line = LINK.sub(_relink, line)
        out.append(line)
    return "\n".join(out)


def _relink(match: re.Match[str]) -> str:
    text, target = match.groups()
    path, _, anchor = target.partition("#")
    path = path.removeprefix("../")  # a docs/ page's link to the repository root
    if path.startswith("docs/"):
        path = path.removeprefix("docs/")
    elif path in SOURCE_PAGES:
        path = SOURCE_PAGES[path]
    elif not path.endswith((".md", ".png")):
        return f"{text} (`{path}`)"
    return f"[{text}]({path}{'#' + anchor if anchor else ''})"


def on_page_content(html: str, page, config, files: Files) -> str:
    # click 8.3 marks "no default" with a sentinel that mkdocs-click prints as is.
    return html.replace("Sentinel.UNSET", "") if page.file.src_path == "cli.md" else html


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    if page.file.src_path in ROOT_DOCUMENTS or "](../" in markdown:
        markdown = _local(markdown, shift=False)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def include(match: re.Match[str]) -> str:
        try:
            return readme_section(match.group(1), readme)
        except KeyError:
            raise PluginError(f"{page.file.src_path}: README.md has no section headed "
                              f"{match.group(1)!r}") from None

    def include_file(match: re.Match[str]) -> str:
        path = ROOT / match.group(1)
        if not path.is_file():
            raise PluginError(f"{page.file.src_path}: no file {match.group(1)}")
        text = path.read_text(encoding="utf-8").rstrip("\n")
        return f"```{LANGUAGES.get(path.suffix, '')} title=\"{match.group(1)}\"\n{text}\n```"

    return INCLUDE_FILE.sub(include_file, INCLUDE.sub(include, markdown))
