"""MkDocs hooks (registered in mkdocs.yml).

* The parameter reference must match the parameter schema: a stale docs/parameters.md
  stops the build (regenerate it with ``python docs/gen_parameters.py``).
* ``<!-- include: PATH -->`` on a line of its own (PATH relative to the repository root)
  is replaced by that file's Markdown, its headings moved two levels down and its
  relative links turned into plain text (they point into the repository, not the site).
  A missing file is replaced by a note that the benchmark has not been run yet, so the
  benchmark pages fill in as soon as ``benchmarks/results/*.md`` are written.
* A page may link a file of the repository outside ``docs/`` (``../benchmarks/results/
  multitask/summary.png``): the file is published with the site under ``_repo/`` and the
  link rewritten to it. A link to such a file that does not exist (a result not produced
  yet) becomes plain text naming the path, rather than a broken link.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r"^<!-- include: (?P<path>\S+) -->$", re.MULTILINE)
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_parameters", ROOT / "docs" / "gen_parameters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_pre_build(config, **kwargs):
    generator = _generator()
    if not generator.PAGE.exists() or generator.PAGE.read_text(encoding="utf8") != generator.generate():
        raise PluginError("docs/parameters.md does not match the parameter schema: run python docs/gen_parameters.py")


def _plain_links(text: str) -> str:
    def replace(match):
        target = match.group("target")
        if re.match(r"^[a-z]+://|^#|^mailto:", target):
            return match.group(0)
        if match.group("bang"):
            return f"*(figure in the repository: `{target}`)*"
        return f"{match.group('text')} (`{target}`)"

    return LINK.sub(replace, text)


def include_markdown(path: str) -> str:
    source = ROOT / path
    if not source.is_file():
        return (f"!!! note \"Not run yet\"\n    No results yet: this section shows `{path}` once the benchmark has "
                "been run and its table written there.\n")
    text = source.read_text(encoding="utf8")
    text = re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.MULTILINE)
    return f"*From `{path}`:*\n\n" + _plain_links(text).strip() + "\n"


def _outside_target(target: str, page_src: Path, docs_dir: Path) -> Path | None:
    """The repository file a relative link points at, when it lies outside the docs folder."""
    if re.match(r"^[a-z]+:|^#|^/", target):
        return None
    path = (page_src.parent / target.split("#")[0]).resolve()
    if docs_dir in path.parents or ROOT not in path.parents:
        return None
    return path


def _markdown_sources(docs_dir: Path):
    return [p for p in docs_dir.rglob("*.md")]


def on_files(files, config, **kwargs):
    docs_dir = Path(config["docs_dir"]).resolve()
    published = set()
    for source in _markdown_sources(docs_dir):
        for match in LINK.finditer(source.read_text(encoding="utf8")):
            path = _outside_target(match.group("target"), source, docs_dir)
            if path is not None and path.is_file() and path.suffix != ".md" and path not in published:
                published.add(path)
                files.append(File.generated(config, "_repo/" + path.relative_to(ROOT).as_posix(),
                                            abs_src_path=str(path)))
    return files


def _repository_links(markdown: str, page_src: Path, docs_dir: Path) -> str:
    def replace(match):
        path = _outside_target(match.group("target"), page_src, docs_dir)
        if path is None:
            return match.group(0)
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and path.suffix != ".md":
            depth = len(page_src.relative_to(docs_dir).parts) - 1
            return f"{match.group('bang')}[{match.group('text')}]({'../' * depth}_repo/{relative})"
        if path.is_file():
            return f"{match.group('text')} (`{relative}` in the repository)"
        return f"*({match.group('text') or 'file'}: `{relative}` has not been produced yet)*"

    return LINK.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    markdown = INCLUDE.sub(lambda m: include_markdown(m.group("path")), markdown)
    if page.file.abs_src_path:
        docs_dir = Path(config["docs_dir"]).resolve()
        markdown = _repository_links(markdown, Path(page.file.abs_src_path).resolve(), docs_dir)
    return markdown
