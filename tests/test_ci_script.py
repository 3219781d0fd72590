"""`.ci/run` must install and test exactly as README.md tells a user to: the two stay in step."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> list[str]:
    """Command lines of the first ```bash block under the README section `## <heading>`."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, f"README.md has no '## {heading}' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), flags=re.S)
    assert block, f"README.md's '## {heading}' section has no bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def ci_commands() -> list[str]:
    """Lines of .ci/run that run a command (no comments, echo, export, set, cd or data check)."""
    skip = ("#", "echo ", "export ", "set ", "cd ", "if ", "exit ")
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and line != "fi" and not line.startswith(skip)]


def test_ci_runs_readmes_install_then_test_command():
    install, test = readme_block("Install"), readme_block("Test")
    assert len(install) == 1 and len(test) == 1, (install, test)
    assert "pytest" in test[0]
    assert ci_commands() == install + test
