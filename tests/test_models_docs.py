"""The README's models section documents every option of `vigil rescore` and `vigil models`,
every image source kind, the tolerance's origin and the GPU path (read from the CLI itself, so a
new option without documentation fails here)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from vigil.cli.app import app

REPO = Path(__file__).resolve().parent.parent


def _section(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    m = re.search(rf"<!-- section:{name} -->(.*?)<!-- /section:{name} -->", text, re.S)
    assert m, f"{path.name} lacks the {name} section"
    return m.group(1)


def _options(command) -> list[str]:
    return [o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"]


def test_every_cli_option_is_documented() -> None:
    readme = _section(REPO / "README.md", "models")
    root = typer.main.get_command(app)
    rescore = root.commands["rescore"]
    opts = _options(rescore)
    assert {"--model", "--source", "--sample", "--fraction", "--device", "--spec"} <= set(opts)
    for opt in opts:
        assert f"`{opt}" in readme, f"vigil rescore {opt} is not in README section models"
    models = root.commands["models"]
    assert set(models.commands) == {"add", "list", "show"}
    for name, cmd in models.commands.items():
        assert f"vigil models {name}" in readme
        for opt in _options(cmd):
            assert f"`{opt}" in readme, f"vigil models {name} {opt} is not documented"


def test_sources_tolerance_gpu_and_demo_weights_are_documented() -> None:
    readme = _section(REPO / "README.md", "models")
    for kind in ("--source folder:PATH", "--source dicomweb:URL", "--source simulated:RUN_DIR"):
        assert kind in readme
    assert "[rescoring.tolerance]" in readme and "declared_tolerance" in readme
    assert "case_tolerance" in readme
    for words in ("--device cuda", "pinned", "--workers"):
        assert words in readme
    # the stated weight size is the shipped files' size
    sizes = {p.stat().st_size for p in (REPO / "models" / "demo").glob("*.safetensors")}
    assert len(sizes) == 1
    size = sizes.pop()
    assert f"{size:,} bytes" in readme and f"**{round(size / 1024)} KB**" in readme
    assert "python -m models.demo.train --model" in readme
    assert "python -m models.demo.agreement --truth" in readme
    bench = _section(REPO / "bench" / "README.md", "models")
    assert "not measured: no GPU available to this session" in bench
    assert ".venv/bin/python bench/bench_rescore.py --device cuda" in bench
