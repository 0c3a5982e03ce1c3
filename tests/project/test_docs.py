"""The docs as a newcomer follows them: README.md and the pages in docs/.

- every relative link resolves to a file, and every #anchor to a heading of that file;
- every repository path named in a code span exists (modules move; the docs must follow);
- the README's configuration table has one row per MovinetConfig field, with its default;
- the README's two commands are the Makefile targets, and the test command is what .ci/run runs.

Each checker is a function tested on a broken sample too, so a check that can no longer
fail is noticed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import adapter
from adapter.core.config import MovinetConfig
from tests.conftest import ROOT

README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
README_COMMANDS = ["make predict-sample", "make test"]  # the main job, then the tests

FENCED_BLOCK = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


# --- links ----------------------------------------------------------------------------------


def without_code(markdown: str) -> str:
    """The markdown without fenced blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))


def heading_anchors(markdown: str) -> set[str]:
    """The #anchors GitHub gives the headings: lower case, punctuation dropped, spaces to hyphens.

    Args:
        markdown: a page's text.
    Returns:
        The anchors, a repeated heading's with -1, -2... as GitHub numbers them.
    """
    anchors: set[str] = set()
    for _, title in HEADING.findall(FENCED_BLOCK.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def broken_links(page: Path) -> list[str]:
    """The relative links of a markdown page whose file or #anchor does not exist.

    Args:
        page: the markdown file; links resolve against its folder.
    Returns:
        One line per broken link: the page, the link and what is missing.
    """
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if URL_SCHEME.match(target):
            continue  # http(s), mailto: not this repository's to check
        relative, _, anchor = target.partition("#")
        linked = (page.parent / relative) if relative else page
        if not linked.exists():
            broken.append(f"{page.name}: {target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text()):
            broken.append(f"{page.name}: {target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


def test_heading_anchors_follow_github():
    page = "# Title\n\n## Evaluation (`evaluate_model`)\n\n### 1. Build: H.264 images\n\n## Notes\n\n## Notes\n"

    assert heading_anchors(page) == {"title", "evaluation-evaluate_model", "1-build-h264-images", "notes", "notes-1"}


def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n\n## A section\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Here\n\n"
        "[ok](docs/there.md) [ok](docs/there.md#a-section) [ok](#here) [web](https://example.com/x.md)\n"
        "[gone](docs/gone.md) [bad anchor](docs/there.md#no-such) [bad self](#nowhere)\n"
        "`[code](not/a/link.md)`\n\n```\n[fenced](not/a/link.md)\n```\n"
    )

    broken = broken_links(page)

    assert len(broken) == 3, broken
    assert "docs/gone.md" in broken[0]
    assert "#no-such" in broken[1] and "there.md" in broken[1]
    assert "#nowhere" in broken[2]


def test_every_relative_link_of_the_readme_and_docs_resolves():
    assert DOC_PAGES, "docs/ has no pages"
    broken = [line for page in [README, *DOC_PAGES] for line in broken_links(page)]

    assert not broken, "\n".join(broken)


def named_paths(markdown: str) -> list[str]:
    """The repository paths a page names in code spans, as paths from the repository root.

    `adapter/video/reader.py`, `tests/video/`, `benchmarks/runtimes.py`, and a package's
    module written from the package (`video/reader.py`, meaning adapter/video/reader.py).
    Placeholders (`tests/<package>/test_<module>.py`) are not paths and are left out.
    """
    packages = "|".join(layer for layer in adapter.LAYERS if not layer.startswith("_") and layer != "movinet_adapter")
    paths = []
    for span in CODE_SPAN.findall(FENCED_BLOCK.sub("", markdown)):
        text = span[1:-1]
        if re.fullmatch(r"(adapter|tests|benchmarks|tools|docker|configs|docs)/[a-z0-9_./-]*", text):
            paths.append(text)
        elif re.fullmatch(rf"({packages})/[a-z0-9_]+\.py", text):
            paths.append(f"adapter/{text}")
    return paths


def test_named_paths_reads_repository_paths_and_package_modules():
    page = (
        "`adapter/video/reader.py` and `runtime/backend.py` run; `tests/video/` tests; "
        "`tests/<package>/test_<module>.py`, `benchmarks/NAME.py`, `tflite-cache/` and `x.py` are not paths\n"
        "```\n`adapter/in/a/fence.py`\n```\n"
    )

    assert named_paths(page) == ["adapter/video/reader.py", "adapter/runtime/backend.py", "tests/video/"]


def test_every_path_the_readme_and_docs_name_exists():
    missing = [
        f"{page.name}: {path}"
        for page in [README, *DOC_PAGES]
        for path in named_paths(page.read_text())
        if not (ROOT / path).exists()
    ]

    assert not missing, "\n".join(missing)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in LINK.findall(README.read_text())}

    assert not [page.name for page in DOC_PAGES if page.resolve() not in linked]


# --- the configuration table ----------------------------------------------------------------


def section(markdown: str, title: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    for match in HEADING.finditer(markdown):
        if match.group(2) == title:
            level = len(match.group(1))
            rest = markdown[match.end() :]
            for following in HEADING.finditer(rest):
                if len(following.group(1)) <= level:
                    return rest[: following.start()]
            return rest
    raise AssertionError(f"no heading {title!r}")


def first_table(markdown: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in the text, as {header: cell}.

    Args:
        markdown: text holding a table (header row, separator row, rows).
    Returns:
        One dict per row, cells stripped.
    """
    lines = [line.strip() for line in markdown.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, _separator, *rows = table
    return [dict(zip(header, row)) for row in rows]


def first_code_span(cell: str) -> str | None:
    match = CODE_SPAN.search(cell)
    return match.group(0)[1:-1] if match else None


def configuration_table_problems(rows: list[dict[str, str]], fields: list[dataclasses.Field]) -> list[str]:
    """What a configuration table gets wrong about the configuration's fields.

    Args:
        rows: the table's rows, with columns key, default, allowed and meaning.
        fields: dataclasses.fields(MovinetConfig).
    Returns:
        One line per problem: a field without a row, a row without a field, a repeated row, a
        default that is not the field's (the cell's first code span read as JSON), an empty cell.
    """
    problems = []
    by_name = {field.name: field for field in fields}
    seen = set()
    for row in rows:
        key = first_code_span(row.get("key", ""))
        if key not in by_name:
            problems.append(f"row {key or row.get('key')!r} names no configuration key")
            continue
        if key in seen:
            problems.append(f"row {key!r} appears twice")
        seen.add(key)
        empty = [column for column in ("default", "allowed", "meaning") if not row.get(column)]
        if empty:
            problems.append(f"row {key!r} has no {', '.join(empty)}")
        field = by_name[key]
        if field.default is not dataclasses.MISSING:
            shown = first_code_span(row.get("default", ""))
            try:
                value = json.loads(shown) if shown is not None else None
            except json.JSONDecodeError:
                value = shown
            if shown is None or value != field.default or type(value) is not type(field.default):
                problems.append(f"row {key!r}: default {shown!r}, but the code's is {json.dumps(field.default)}")
    problems.extend(f"key {name!r} has no row" for name in by_name if name not in seen)
    return problems


def test_configuration_table_problems_are_found_in_a_broken_table():
    table = (
        "| key | default | allowed | meaning |\n| --- | --- | --- | --- |\n"
        "| `imgz` | `224` | integer ≥ 32 | frame size |\n"
        "| `top_k` | `5` | integer ≥ 1 | labels |\n"  # wrong default
        "| `fps` | `null` | | resampling rate |\n"  # no allowed values
        "| `learning_rate` | `1e-3` | number > 0 | step size |\n"  # the same value, written otherwise
        "| `dropout_rate` | `0` | number | dropout |\n"  # 0 is not the float 0.2, nor even a float
        "| `imgsz` | `224` | integer | typo |\n"
        "| `imgz` | `224` | integer ≥ 32 | again |\n"
    )
    fields = [f for f in dataclasses.fields(MovinetConfig) if f.name in ("imgz", "top_k", "fps", "learning_rate")]
    fields += [f for f in dataclasses.fields(MovinetConfig) if f.name in ("dropout_rate", "model_id")]

    problems = configuration_table_problems(first_table(table), fields)

    assert problems == [
        "row 'top_k': default '5', but the code's is 3",
        "row 'fps' has no allowed",
        "row 'dropout_rate': default '0', but the code's is 0.2",
        "row 'imgsz' names no configuration key",
        "row 'imgz' appears twice",
        "key 'model_id' has no row",
    ]


def test_readme_configuration_table_has_every_key_of_the_code_with_its_default():
    rows = first_table(section(README.read_text(), "Configuration"))
    problems = configuration_table_problems(rows, list(dataclasses.fields(MovinetConfig)))

    assert not problems, "\n".join(problems)


# --- the two commands -----------------------------------------------------------------------


def readme_commands(readme: str) -> list[str]:
    """The commands of the README's "Two commands" code block, without their comments."""
    block = re.search(r"```bash\n(.*?)```", section(readme, "Two commands"), re.DOTALL)
    assert block, "no bash block under 'Two commands'"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def make_targets(makefile: str) -> dict[str, list[str]]:
    """The Makefile's explicit targets and their recipe lines.

    Args:
        makefile: the Makefile's text.
    Returns:
        {target: [recipe line, ...]} for each `target: prerequisites` rule (not variables).
    """
    targets: dict[str, list[str]] = {}
    recipe = None
    for line in makefile.splitlines():
        rule = re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)", line)
        if rule:
            recipe = targets.setdefault(rule.group(1), [])
        elif line.startswith("\t") and recipe is not None:
            recipe.append(line.strip())
        elif line.strip() and not line.startswith("#"):
            recipe = None
    return targets


def test_make_targets_reads_rules_and_recipes_but_not_variables():
    makefile = "PY := python\nA ?= 1\n\n.PHONY: test\n# a comment\ntest: setup\n\t$(PY) -m pytest\n\nsetup:\n\ttrue\n"

    assert make_targets(makefile) == {".PHONY": [], "test": ["$(PY) -m pytest"], "setup": ["true"]}


def test_readme_commands_are_the_makefile_targets_and_ci_runs_the_test_command():
    commands = readme_commands(README.read_text())
    targets = make_targets((ROOT / "Makefile").read_text())
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]

    assert commands == README_COMMANDS
    main_job, tests = (command.removeprefix("make ") for command in commands)
    assert main_job in targets and tests in targets
    # The main job runs the sample script, the tests run pytest; both exist as named.
    (script,) = [word for line in targets[main_job] for word in line.split() if word.endswith(".py")]
    assert (ROOT / script).is_file()
    assert any("-m pytest" in line for line in targets[tests])
    assert README_COMMANDS[1] in ci_lines
