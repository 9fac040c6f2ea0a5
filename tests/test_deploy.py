"""The container as shipped (Dockerfile, compose.yaml): what no Docker engine on the development machines can
build is read here, so the hardening does not quietly go."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
COMPOSE_TEXT = (REPO / "compose.yaml").read_text(encoding="utf-8")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    joined = re.sub(r"\s*\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_base_image_is_pinned_by_digest() -> None:
    bases = [argument for name, argument in _instructions() if name == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\S*@sha256:[0-9a-f]{64}", base) for base in bases), bases


def test_packages_come_only_from_the_lock_with_their_hashes() -> None:
    installs = [argument for name, argument in _instructions() if name == "RUN" and "pip install" in argument]
    assert installs[0] == "pip install --require-hashes -r requirements.lock"
    assert installs[1].startswith("pip install --no-deps --no-build-isolation . && pip check")
    assert len(installs) == 2


def test_the_health_check_asks_the_bots_healthz_in_either_mode() -> None:
    instructions = _instructions()
    checks = [argument for name, argument in instructions if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert checks[0].endswith('CMD ["python", "-m", "bot", "health", "--timeout", "5"]')
    environment = " ".join(argument for name, argument in instructions if name == "ENV")
    assert "STATUS_PORT=8081" in environment  # long polling has /healthz to ask too
    assert "STATUS_LISTEN=127.0.0.1" in environment  # /metrics stays inside unless the operator opens it


def test_compose_refuses_to_start_without_a_database_password() -> None:
    compose = yaml.safe_load(COMPOSE_TEXT)
    required = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == required
    assert f"iop:{required}@db" in compose["services"]["bot"]["environment"]["DATABASE_URL"]
    assert re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", COMPOSE_TEXT) == [required, required]
    assert "change-me" not in COMPOSE_TEXT
