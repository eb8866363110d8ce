"""The two set-up commands at the top of the README are the docs' and CI's: the demo command
and the test command that .ci/run runs (plus its own checks)."""

from __future__ import annotations

from docblocks import ROOT, blocks


def parts(command: str) -> list[str]:
    """A shell command as its ``&&``-separated parts, whitespace normalised."""
    joined = " ".join(command.replace("\\\n", " ").split())
    return [p.strip() for p in joined.split("&&")]


def setup_commands(page: str) -> list[str]:
    return [b.code.strip() for b in blocks(page) if b.lang == "bash" and "pip install" in b.code][:2]


def test_the_readme_opens_with_the_two_commands():
    first = [b for b in blocks("README.md")][:2]
    assert [b.lang for b in first] == ["bash", "bash"]
    demo, test = (b.code for b in first)
    assert parts(demo)[-1] == "batchlab demo" and parts(test)[-1] == "python -m pytest"
    assert "docs" in test.split('".[')[1].split("]")[0].split(",")   # so the docs build runs
    assert setup_commands("docs/index.md") == [demo.strip(), test.strip()]


def test_ci_runs_the_readme_test_command():
    test = setup_commands("README.md")[1]
    ci = (ROOT / ".ci" / "run").read_text()
    ci_command = ci[ci.index("pip install torch"):]
    ci_parts = parts(ci_command)
    # every part of the README's command, in order; CI may add checks between them
    positions = [ci_parts.index(p) for p in parts(test)]
    assert positions == sorted(positions)
