"""Docs that cannot rot: every `edgeft ...` command in the code blocks of README.md and docs/
parses with the CLI's own parser (typer/click, nothing executed), every Python block of the
embedding page compiles and names only public `edgeft.runtime` symbols, every relative link
reaches a file of the repository (and a heading of it, where it names one), and the README stays
a short front door whose tour reaches a page per capability."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import typer

from edgeft.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
EMBEDDING = ROOT / "docs" / "embedding.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"^(?:\S*/)?edgeft\s")  # `edgeft run ...`, `.venv/bin/edgeft run ...`
SHELL = {"|", ">", ">>", "2>", "&>", "&&", "||", ";", "&"}  # where the shell, not edgeft, takes over
# typer vendors click: its parser's errors derive from this class (typer names BadParameter, not its base)
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def blocks(page: Path, languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line number, body) of each fenced block in one of `languages`."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1) in languages]


def commands(page: Path) -> list[tuple[str, list[str]]]:
    """Every edgeft command line of the page's shell blocks, continuations joined, comments cut."""
    found = []
    for start, body in blocks(page, ("bash", "sh", "shell", "console")):  # an untagged block is output
        joined = re.sub(r"\\\n\s*", " ", body)
        for offset, line in enumerate(joined.splitlines()):
            line = line.strip().removeprefix("$ ")
            if COMMAND.match(line):
                words = shlex.split(line, comments=True)
                cut = next((i for i, w in enumerate(words) if w in SHELL), len(words))
                found.append((f"{page.name}:{start + offset}", words[1:cut]))
    return found


ALL = [(where, words) for page in PAGES for where, words in commands(page)]


def test_the_docs_show_commands() -> None:
    assert len(ALL) > 30, "the pages lost their examples"


@pytest.mark.parametrize(("where", "words"), ALL, ids=[where for where, _ in ALL])
def test_every_documented_command_parses(where: str, words: list[str]) -> None:
    group = typer.main.get_command(app)
    name, *args = words
    command = group.get_command(typer.Context(group), name)
    assert command is not None, f"{where}: there is no command `edgeft {name}`"
    try:
        command.make_context(name, list(args))  # parses and converts every option; runs nothing
    except UsageError as exc:
        pytest.fail(f"{where}: `edgeft {' '.join(words)}`: {exc.format_message()}")


def test_the_checker_catches_an_option_that_does_not_exist() -> None:
    group = typer.main.get_command(app)
    with pytest.raises(UsageError, match="No such option"):
        group.get_command(typer.Context(group), "run").make_context("run", ["--source", "x", "--no-such-option"])


def public_runtime() -> set[str]:
    import edgeft.runtime

    return set(edgeft.runtime.__all__)


@pytest.mark.skipif(not EMBEDDING.is_file(), reason="docs/embedding.md is not written yet")
def test_embedding_examples_compile_and_use_public_names() -> None:
    examples = blocks(EMBEDDING, ("python",))
    assert examples, "the embedding page shows no Python"
    public = public_runtime()
    for start, body in examples:
        tree = ast.parse(body, f"{EMBEDDING.name}:{start}")
        compile(tree, f"{EMBEDDING.name}:{start}", "exec")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgeft"):
                assert node.module == "edgeft.runtime", f"{EMBEDDING.name}:{start}: imports {node.module}"
                unknown = {alias.name for alias in node.names} - public
                assert not unknown, f"{EMBEDDING.name}:{start}: {unknown} are not public edgeft.runtime names"


# Links: [text](path), [text](path#anchor), [text](#anchor), images too; code is not prose.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """The page without its fenced blocks and inline code (which show syntax, not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lowercase, punctuation dropped (hyphens and spaces kept), spaces to
    hyphens; a repeated heading gets -1, -2, ..."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        ids.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return ids


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of `page`: a target outside the repository or missing,
    or an anchor that no heading of the Markdown page it points into has."""
    problems = []
    for target in LINK.findall(prose(page.read_text())):
        if target.startswith(EXTERNAL):
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page.resolve()
        if not where.is_relative_to(root.resolve()):
            problems.append(f"{page.name}: ({target}) leaves the repository")
        elif not where.exists():
            problems.append(f"{page.name}: ({target}): there is no {where.relative_to(root.resolve())}")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            problems.append(f"{page.name}: ({target}): {where.name} has no heading #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    assert not broken_links(page), "\n".join(broken_links(page))


def test_the_pages_link_each_other() -> None:
    assert sum(len(LINK.findall(prose(page.read_text()))) for page in PAGES) > 50, "the pages lost their links"


def test_the_link_checker_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "run.md").write_text("# Run\n\n## Faults: what is guaranteed\n\n```bash\n# not a heading\n```\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/run.md#faults-what-is-guaranteed) [ok](#readme) [web](https://example.com/x.md#y)\n"
        "`[code](not/a/link.md)` [gone](docs/renamed.md) [no heading](docs/run.md#faults)\n"
        "[fenced](docs/run.md#not-a-heading) [out](../elsewhere.md)\n\n# README\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md: (docs/renamed.md): there is no docs/renamed.md",
        "README.md: (docs/run.md#faults): run.md has no heading #faults",
        "README.md: (docs/run.md#not-a-heading): run.md has no heading #not-a-heading",
        "README.md: (../elsewhere.md) leaves the repository",
    ]


def test_github_heading_ids() -> None:
    page = ROOT / "docs" / "run.md"
    assert {"faults-what-is-guaranteed", "decoding-at-the-models-size-and-where-the-time-goes"} <= anchors(page)


# The front door: short, and its tour reaches one page per capability.
README = ROOT / "README.md"
CAPABILITIES = ["export", "run", "bags", "ros2", "drive", "transfer", "compare", "ray", "backends", "embedding", "performance"]


def section(page: Path, title: str) -> str:
    """The text under the `## title` heading of `page`, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", FENCE.sub("", page.read_text()), re.S | re.M)
    assert match, f"{page.name} has no section ## {title}"
    return match.group(1)


def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= 150, f"README.md has {lines} lines: move the detail into docs/ and link it"


def test_no_page_is_longer_than_400_lines() -> None:
    long = {p.name: n for p in PAGES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these pages: {long}"


def test_the_tour_links_a_page_per_capability_and_each_exists() -> None:
    linked = [target.partition("#")[0] for target in LINK.findall(prose(section(README, "Tour")))]
    pages = {Path(target).stem for target in linked if target.startswith("docs/") and target.endswith(".md")}
    assert set(CAPABILITIES) <= pages, f"the tour does not link {sorted(set(CAPABILITIES) - pages)}"
    for target in linked:
        assert (ROOT / target).is_file(), f"the tour links {target}, which does not exist"


def test_the_docs_index_lists_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    listed = {Path(target.partition("#")[0]).name for target in LINK.findall(prose(index.read_text()))}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert pages <= listed, f"docs/README.md does not list {sorted(pages - listed)}"


def test_the_quick_start_is_what_ci_runs() -> None:
    (start, body), *_ = blocks(README, ("bash",))
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for line in body.splitlines():
        command = line.split("#", 1)[0].strip()
        assert any(c.split()[:len(command.split())] == command.split() for c in ci), f"README.md:{start}: CI does not run `{command}`"
