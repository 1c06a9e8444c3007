"""Docs that cannot rot: every `edgeft ...` command in the code blocks of README.md and docs/
parses with the CLI's own parser (typer/click, nothing executed), and every Python block of the
embedding page compiles and names only public `edgeft.runtime` symbols."""

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
