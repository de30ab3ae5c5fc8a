"""The Containerfile and compose.yaml agree with the code, checked without building an image:
their commands are the CLI's, their settings are real, the health check answers, no root."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from broadsheet.cli import app as cli_app
from broadsheet.config import Settings
from broadsheet.web.app import create_app
from helpers import free_port, live_server

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"BROADSHEET_{name.upper()}" for name in Settings.model_fields}


def instructions(text: str) -> list[tuple[str, str]]:
    """The Containerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that runs: those after the last FROM."""
    steps = instructions((ROOT / "Containerfile").read_text())
    last = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last + 1 :]


def stage_env(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword == "ENV":
            env.update(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", rest))
    return env


def exec_form(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    (rest,) = [rest for key, rest in steps if key == keyword]
    if keyword == "HEALTHCHECK":
        rest = rest[rest.index("CMD") + len("CMD") :]
    return json.loads(rest)


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def assert_cli_command(argv: list[str]) -> None:
    """``argv`` (``broadsheet ...``) names a command of the CLI and parses."""
    assert argv[0] == "broadsheet"
    group = typer.main.get_command(cli_app)
    words = argv[1:]
    command: click.Command = group
    while isinstance(command, click.Group):
        name, words = words[0], words[1:]
        assert name in command.commands, f"`broadsheet` has no command {argv[1:]}"
        command = command.commands[name]
    command.make_context(command.name, list(words), resilient_parsing=False)


def test_runtime_image_runs_as_a_user_who_is_not_root() -> None:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    created = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert "useradd" in created and users[-1].split(":")[0] in created


def test_default_command_is_serve_on_every_interface_at_the_exposed_port() -> None:
    steps = final_stage()
    command = exec_form(steps, "CMD")
    assert command[:2] == ["broadsheet", "serve"]
    assert_cli_command(command)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    exposed = {rest for keyword, rest in steps if keyword == "EXPOSE"}
    assert exposed == {stage_env(steps).get("BROADSHEET_PORT", "8000")}


def test_image_settings_are_real_and_the_store_lies_in_the_volume() -> None:
    steps = final_stage()
    env = stage_env(steps)
    named = {name for name in env if name.startswith("BROADSHEET_")}
    assert named <= SETTINGS, f"not settings: {sorted(named - SETTINGS)}"
    volumes = {rest for keyword, rest in steps if keyword == "VOLUME"}
    assert volumes == {"/data"}
    assert env["BROADSHEET_DATABASE_URL"] == "sqlite:////data/broadsheet.db"
    assert Settings(database_url=env["BROADSHEET_DATABASE_URL"]).database_url.startswith(
        "sqlite:////data/"
    )


def test_image_pins_the_same_torch_as_the_install_script() -> None:
    pins = set(re.findall(r"torch==[\w.]+", (ROOT / "scripts" / "install.sh").read_text()))
    assert len(pins) == 1
    assert pins <= set(re.findall(r"torch==[\w.]+", (ROOT / "Containerfile").read_text()))


def test_build_context_keeps_what_the_image_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:] for line in ignore if line.startswith("!")}
    copied = set()
    for keyword, rest in instructions((ROOT / "Containerfile").read_text()):
        if keyword == "COPY" and "--from" not in rest:
            copied.update(rest.split()[:-1])
    assert copied and copied <= kept
    assert all((ROOT / path).exists() for path in copied)


def test_health_check_path_is_a_route_that_answers(database_url: str) -> None:
    command = exec_form(final_stage(), "HEALTHCHECK")
    paths = re.findall(r"/[a-z]+z\b", command[-1])
    assert paths == ["/healthz"]
    app = create_app(Settings(database_url=database_url, secret_key="container-test"))
    assert "/healthz" in {getattr(route, "path", None) for route in app.routes}
    check = [sys.executable, *command[1:]]  # the image's python3 is the venv's
    with live_server(app) as url:
        port = url.rsplit(":", 1)[1].strip("/")
        answered = subprocess.run(check, env={"BROADSHEET_PORT": port}, timeout=30)
    assert answered.returncode == 0
    nothing = subprocess.run(
        check, env={"BROADSHEET_PORT": str(free_port())}, capture_output=True, timeout=30
    )
    assert nothing.returncode != 0


def test_compose_runs_cli_commands_with_real_settings() -> None:
    services = compose()["services"]
    assert services["serve"]["command"][:2] == ["broadsheet", "serve"]
    assert services["worker"]["command"] == ["broadsheet", "worker"]
    assert services["migrate"]["command"] == ["broadsheet", "db", "upgrade"]
    for name in ("migrate", "serve", "worker"):
        service = services[name]
        assert_cli_command(service["command"])
        named = set(service["environment"])
        assert named <= SETTINGS, f"{name}: not settings: {sorted(named - SETTINGS)}"
        assert "BROADSHEET_DATABASE_URL" in named
        assert service["build"]["dockerfile"] == "Containerfile"
    for name in ("serve", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_database_is_postgres_with_pgvector_in_a_volume() -> None:
    spec = compose()
    db = spec["services"]["db"]
    assert db["image"].split("/")[-1].startswith("pgvector:")
    assert db["image"].rsplit(":", 1)[0].endswith("pgvector/pgvector")
    volume = db["volumes"][0].split(":")[0]
    assert volume in spec["volumes"]
    url = spec["services"]["serve"]["environment"]["BROADSHEET_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@db:5432/" in url
    published = spec["services"]["serve"]["ports"][0]
    assert published.endswith(":8000")


def test_constraints_pin_every_runtime_dependency_within_its_range() -> None:
    """A dependency added to pyproject.toml without refreshing the image's pins fails here
    (refresh: scripts/container_pins.py)."""
    import tomllib

    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "container-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name == "torch":
            (pinned,) = re.findall(r"torch==([\w.]+)", (ROOT / "Containerfile").read_text())
        else:
            assert name in pins, f"{name} is not pinned in container-constraints.txt"
            pinned = pins[name]
        assert req.specifier.contains(pinned, prereleases=True), f"{name}=={pinned} vs {req}"
