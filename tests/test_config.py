from __future__ import annotations

import pytest

from bot.core.config import ConfigError, load_settings
from tests.harness import TEST_TOKEN, CommandLine


def test_defaults_need_nothing() -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.telegram_api_base_url == "https://api.telegram.org"
    assert settings.bot_token is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("DATABASE_URL", "not a url"),
        ("BOT_TOKEN", "99999-not-a-token"),
        ("TELEGRAM_API_BASE_URL", "ftp://example"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("ENCRYPTION_KEY", "short"),
        ("INVITE_TTL_HOURS", "-4"),
        ("BOT_USERNAME", "x"),
        ("WEBHOOK_URL", "bot.example.org/telegram"),
        ("WEBHOOK_SECRET", "short"),
        ("WEBHOOK_PORT", "70000"),
        ("STATUS_PORT", "0"),
        ("METRICS_TOKEN", "short secret"),
    ],
)
def test_a_bad_setting_is_named_and_its_value_not_shown(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **{name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message
    if name in ("BOT_TOKEN", "ENCRYPTION_KEY", "WEBHOOK_SECRET", "METRICS_TOKEN"):
        assert value not in message


def test_token_is_secret_in_repr() -> None:
    settings = load_settings(_env_file=None, BOT_TOKEN=TEST_TOKEN)
    assert TEST_TOKEN not in repr(settings) and TEST_TOKEN not in str(settings)
    assert settings.require_token() == TEST_TOKEN


def test_missing_token_for_run_is_one_clear_line(cli: CommandLine) -> None:
    result = cli("run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: BOT_TOKEN: not set (get one from @BotFather, or run `python -m bot demo`)"
    ]


def test_malformed_setting_stops_startup_without_traceback(cli: CommandLine) -> None:
    result = cli("run", BOT_TOKEN="99:short-secret-value", DATABASE_URL="sqlite+aiosqlite:///x.sqlite3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: BOT_TOKEN:")
    assert "short-secret-value" not in result.stderr and "Traceback" not in result.stderr


def test_blank_webhook_settings_are_unset() -> None:
    """compose.yaml passes `WEBHOOK_URL=` when it is not set: long polling must still start."""
    settings = load_settings(_env_file=None, WEBHOOK_URL="", WEBHOOK_SECRET=" ")
    assert settings.webhook_url is None and settings.webhook_secret is None


def test_the_status_settings_change_nothing_unless_set() -> None:
    """Unset (or blank, as compose passes them): /metrics is open and served beside the webhook only."""
    for blank in ({}, {"STATUS_PORT": "", "METRICS_TOKEN": " "}):
        settings = load_settings(_env_file=None, **blank)
        assert (settings.status_port, settings.metrics_token) == (None, None)
        assert settings.status_listen == "127.0.0.1"
    token = "a-metrics-token-0123456789"
    settings = load_settings(_env_file=None, STATUS_PORT="8081", METRICS_TOKEN=token)
    assert settings.status_port == 8081 and settings.metrics_token is not None
    assert token not in repr(settings)


def test_webhook_mode_names_what_it_misses(cli: CommandLine) -> None:
    result = cli("run", "--webhook", BOT_TOKEN=TEST_TOKEN, WEBHOOK_URL="https://bot.example.org/telegram")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0].startswith("configuration error: WEBHOOK_SECRET: not set")
