"""The compose files and the proxy config agree with the code they start.

No Docker daemon runs in the tests, so this reads the files as compose would and checks what a
typo would break at deploy time: every command is a module that exists, every variable is a
setting, every health check asks a route the service serves, and the proxy forwards the path the
bot listens on.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.webhook import HEALTH_PATH
from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.scale.yml"]
# what the images themselves read, not the bot's settings
FOREIGN_VARIABLES = {"HF_HOME", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}


def services(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))["services"]


def own_services(name: str) -> dict[str, Any]:
    """The services built from this repository (the others are stock images)."""
    return {key: value for key, value in services(name).items() if "build" in value}


def runs_as_a_program(module: str) -> bool:
    """`python -m module` does something: a package with `__main__`, or a main guard."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    if spec.submodule_search_locations:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return '__name__ == "__main__"' in Path(spec.origin).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_command_runs_a_module_of_this_repository(name: str) -> None:
    for service, spec in own_services(name).items():
        command = spec.get("command", ["python", "-m", "bot"])
        assert command[:2] == ["python", "-m"], service
        assert runs_as_a_program(command[2]), (service, command)
        if command[2] == "bot":
            assert set(command[3:]) <= {"--webhook"}, service


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_variable_is_a_setting(name: str) -> None:
    fields = {field.upper() for field in Settings.model_fields}
    for service, spec in services(name).items():
        for variable in spec.get("environment", {}):
            assert variable in fields or variable in FOREIGN_VARIABLES, (service, variable)


def test_scale_health_checks_ask_the_routes_the_services_serve() -> None:
    spec = services("docker-compose.scale.yml")
    bot_check = " ".join(spec["bot"]["healthcheck"]["test"])
    port = spec["bot"]["environment"]["WEBHOOK_PORT"]
    assert f"127.0.0.1:{port}{HEALTH_PATH}" in bot_check
    generation = spec["generation"]
    generation_port = generation["command"][generation["command"].index("--port") + 1]
    assert f"127.0.0.1:{generation_port}/health'" in " ".join(generation["healthcheck"]["test"])
    assert spec["bot"]["environment"]["GENERATION_URL"] == f"http://generation:{generation_port}"


def test_replicas_wait_for_one_migration_and_share_a_secret() -> None:
    spec = services("docker-compose.scale.yml")
    assert spec["migrate"]["command"] == ["python", "-m", "storage.upgrade"]
    assert spec["bot"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "WEBHOOK_SECRET" in spec["bot"]["environment"]
    assert spec["bot"]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert spec["bot"]["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_the_proxy_forwards_the_webhook_path_to_the_bot_port() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    spec = services("docker-compose.scale.yml")
    assert f"location {Settings.model_fields['webhook_path'].default}" in conf
    upstream = re.search(r"set \$bot_upstream http://bot:(\d+);", conf)
    assert upstream is not None and upstream.group(1) == spec["bot"]["environment"]["WEBHOOK_PORT"]
    assert f"location = {HEALTH_PATH}" in conf


def test_the_image_holds_every_package_the_services_import() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for package in ("bot", "generation", "storage", "models"):
        assert f"COPY {package} ./{package}" in dockerfile
