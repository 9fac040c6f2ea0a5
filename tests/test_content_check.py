"""`content check` catches each class of error an editor can make (a test each) and passes on ours."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from bot.content.catalog import ContentError, load_catalog
from bot.content_check.check import Report, check_content
from bot.content_check.loader import load_content
from tests.harness import TEST_ENCRYPTION_KEY, CommandLine

CONTENT = Path(__file__).resolve().parent.parent / "content"
MODULE = """\
id: {id}
title: Box breathing
category: breathing
minutes: 3
summary: Slow, even breaths.
steps:
  - text: Sit comfortably.
  - text: Breathe in for 4.
    pause: 4
  - text: Well done.
"""


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    (root / "en" / "modules").mkdir(exist_ok=True)
    (root / "en" / "modules" / "test_module.yaml").write_text(MODULE.format(id="test_module"))
    return root


def _errors(root: Path) -> list[str]:
    return check_content(root).errors


def test_shipped_content_passes(shipped_report: Report) -> None:
    assert shipped_report.errors == []


def test_a_valid_copy_passes(content: Path) -> None:
    assert _errors(content) == []


def test_bad_yaml(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("a: ok\nb: [unclosed\n")
    (content / "en" / "modules" / "test_module.yaml").write_text("id: test_module\ntitle: [oops\n")
    errors = _errors(content)
    assert any("extra.yaml:3: not valid YAML" in e for e in errors), errors
    assert any("test_module.yaml:3: not valid YAML" in e for e in errors), errors


def test_one_bad_yaml_file_hides_no_other_check(content: Path) -> None:
    checkin = content / "en" / "checkin.yaml"
    checkin.write_text(checkin.read_text(encoding="utf-8") + "oops: [\n", encoding="utf-8")
    (content / "en" / "extra.yaml").write_text("extra:\n  greeting: Hello {{ nmae }}\n")
    module = content / "en" / "modules" / "box_breathing.yaml"
    text = module.read_text(encoding="utf-8")
    module.write_text(
        re.sub(r"^title: .*$", "title: " + "Far too long " * 3, text, flags=re.M), encoding="utf-8"
    )
    report = check_content(content)
    lines = checkin.read_text(encoding="utf-8").count("\n")
    assert (
        report.errors[0]
        == f"{checkin}:{lines + 1}: not valid YAML: expected the node content, but found '<stream end>'"
    )
    assert any("extra.yaml:2: extra.greeting: 'nmae' is undefined" in e for e in report.errors), report.errors
    assert any(e.startswith(f"{module}:") and "title" in e for e in report.errors), report.errors
    assert report.errors[-1].endswith("they may be in checkin.yaml, which is not valid YAML (above)")
    assert len(report.errors) == 4, report.errors  # and no "missing text" for each of checkin.yaml's
    assert report.catalog is not None and len(report.catalog.keys()) > 300  # the other files were checked
    # Nothing about the Spanish module or texts whose English could not be read: the errors say it all.
    assert not [w for w in report.warnings if "box_breathing" in w and "review" not in w], report.warnings
    assert not [w for w in report.warnings if "checkin." in w and "review" not in w], report.warnings


def test_template_syntax(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("a: ok\nb: Hello {{ name\n")
    assert any(
        e.startswith(f"{content / 'en' / 'extra.yaml'}:2:") and "template error" in e
        for e in _errors(content)
    )


def test_undefined_variable(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("extra:\n  greeting: |-\n    Hello {{ nmae }}\n")
    errors = _errors(content)
    assert any("extra.yaml:3: extra.greeting: 'nmae' is undefined" in e for e in errors), errors


def test_duplicate_key(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("stranger:\n  not_enrolled: again\n")
    assert any("extra.yaml:2: duplicate key 'stranger.not_enrolled'" in e for e in _errors(content))


def test_too_long_for_telegram(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("long: " + "word " * 1000 + "\n")
    assert any("extra.yaml:1: long: 4999 characters, over Telegram's 4096" in e for e in _errors(content))


def test_empty_text(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("x:\n  blank: \"{{ '' }}\"\n")
    assert any("extra.yaml:2: x.blank: renders empty" in e for e in _errors(content))


def test_button_label_too_long(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("x:\n  go_button: " + "é" * 40 + "\n")
    assert any("x.go_button: a button label over 64 bytes" in e for e in _errors(content))


def test_a_text_the_bot_uses_was_deleted(content: Path) -> None:
    checkin = content / "en" / "checkin.yaml"
    checkin.write_text(
        checkin.read_text().replace("    mood: >-\n      How is your mood", "    feeling: >-\n      How")
    )
    assert _errors(content) == [f"{content / 'en'}:1: missing text 'checkin.ask.mood': the bot uses it"]


def test_unknown_text_included(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text('extra:\n  note: Hello. {{ t("crisis.shorter") }}\n')
    assert _errors(content) == [
        f"{content / 'en' / 'extra.yaml'}:2: extra.note: \"no content for 'crisis.shorter'\""
    ]


def test_module_schema_errors_point_at_the_line(content: Path) -> None:
    broken = MODULE.format(id="test_module").replace("category: breathing", "category: dancing")
    broken = broken.replace("    pause: 4", "    pause: 400")
    (content / "en" / "modules" / "test_module.yaml").write_text(broken)
    errors = _errors(content)
    path = content / "en" / "modules" / "test_module.yaml"
    assert any(e.startswith(f"{path}:3: category:") for e in errors), errors
    assert any(e.startswith(f"{path}:9: steps.1.pause:") for e in errors), errors


def test_module_id_must_match_file_and_fit_callback_data(content: Path) -> None:
    (content / "en" / "modules" / "other.yaml").write_text(MODULE.format(id="not_other"))
    long_id = "m" * 41
    (content / "en" / "modules" / f"{long_id}.yaml").write_text(MODULE.format(id=long_id))
    errors = _errors(content)
    assert any("other.yaml:1: id 'not_other' must equal the file name" in e for e in errors)
    assert any(f"{long_id}.yaml:1: id:" in e for e in errors)


def test_missing_translation_is_a_warning(content: Path) -> None:
    (content / "en" / "extra.yaml").write_text("only_english: Hi\n")
    report = check_content(content)
    assert report.errors == []
    assert "es: no translation of 'only_english'; English is shown instead" in report.warnings
    assert any("es/modules/test_module.yaml: missing" in w for w in report.warnings)


# An editor's text reaching Python's insides through the `t` function it is given: the process's secrets,
# a shell command, and an attribute name built at render time (which no reading of the text can see).
READ_KEY = "{{ t.__globals__['__builtins__']['__import__']('os').environ['ENCRYPTION_KEY'] }}"
RUN = "{{ t.__globals__.__builtins__.__import__('os').system('touch %s') }}"
BUILT = "{{ t|attr('__glo' ~ 'bals__') }}"


def _plant(content: Path, marker: Path) -> Path:
    """The attack: the reply every stranger gets reads the key; two more texts run a command."""
    common = content / "en" / "common.yaml"
    text = common.read_text(encoding="utf-8")
    common.write_text(text.replace("  not_enrolled: >-\n", f'  not_enrolled: "{READ_KEY}"\n  old: >-\n'))
    (content / "en" / "extra.yaml").write_text(
        f'extra:\n  run: "{RUN % marker}"\n  built: "{BUILT}"\n  filter: "{{{{ t|attr(\'__class__\') }}}}"\n'
    )
    return common


def test_a_text_naming_an_underscore_attribute_or_variable_is_refused(content: Path, tmp_path: Path) -> None:
    common = _plant(content, tmp_path / "marker")
    (content / "en" / "more.yaml").write_text("more:\n  name: '{{ _secret }}'\n  item: \"{{ t['_x'] }}\"\n")
    extra, more = content / "en" / "extra.yaml", content / "en" / "more.yaml"
    line = common.read_text(encoding="utf-8").splitlines().index(f'  not_enrolled: "{READ_KEY}"') + 1
    errors = _errors(content)
    refused = "names starting with _ are not allowed in texts"
    assert (
        f"{common}:{line}: stranger.not_enrolled: uses '__builtins__', '__globals__', '__import__'; {refused}"
        in errors
    )
    assert f"{extra}:2: extra.run: uses '__builtins__', '__globals__', '__import__'; {refused}" in errors
    assert f"{extra}:4: extra.filter: uses '__class__'; {refused}" in errors
    assert f"{more}:2: more.name: uses '_secret'; {refused}" in errors
    assert f"{more}:3: more.item: uses '_x'; {refused}" in errors
    # Built at render time: only the sandbox sees it, and the check's rendering reports it.
    assert any(e.startswith(f"{extra}:3: extra.built: not allowed in a text:") for e in errors), errors
    with pytest.raises(ContentError):  # so a running bot never serves it (it keeps its last good content)
        load_content(content)
    assert not (tmp_path / "marker").exists()


def test_the_sandbox_stops_a_text_reading_secrets_or_running_code(
    content: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    marker = tmp_path / "marker"
    _plant(content, marker)
    catalog = load_catalog(content)  # loads: these are valid templates; rendering is where they would act
    for key in ("stranger.not_enrolled", "extra.run", "extra.built", "extra.filter"):
        with pytest.raises(SecurityError):
            catalog.render(key, "en")
    assert not marker.exists()
    assert catalog.render("stranger.not_enrolled", "es").startswith("Hola.")  # the other texts still work


def test_a_text_cannot_hold_the_bot_with_a_huge_power_or_product(content: Path) -> None:
    """`{{ 9 ** 999999999 }}` would hold the event loop (crisis replies too) for minutes, and a string times a
    huge number would take the memory: the sandbox refuses both, and content check says where."""
    (content / "en" / "extra.yaml").write_text(
        "extra:\n"
        "  power: '{{ 9 ** 999999999 }}'\n"
        "  long: '{{ \"x\" * 300000000 }}'\n"
        "  fine: '{{ \"ab\" * 3 }}'\n"
    )
    extra = content / "en" / "extra.yaml"
    errors = _errors(content)
    assert any(e.startswith(f"{extra}:2: extra.power: not allowed in a text:") for e in errors), errors
    assert any(e.startswith(f"{extra}:3: extra.long: not allowed in a text:") for e in errors), errors
    assert not any("extra.fine" in e for e in errors)


def test_cli_prints_path_line_and_fails(content: Path, cli: CommandLine) -> None:
    (content / "en" / "extra.yaml").write_text("a: Hello {{ name\n")
    result = cli("content", "check", str(content))
    assert result.returncode == 1
    assert f"{content / 'en' / 'extra.yaml'}:1: template error in 'a'" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("content check FAILED: ")


REQUIRED_MODULES = {
    "box_breathing",
    "breathing_478",
    "progressive_muscle_relaxation",
    "urge_surfing",
    "grounding_54321",
    "halt_check",
    "play_the_tape_forward",
    "body_scan",
}


def test_the_required_modules_ship_in_english_and_spanish(shipped_report: Report) -> None:
    report = shipped_report
    assert report.modules is not None
    for language in ("en", "es"):
        assert set(report.modules.modules[language]) >= REQUIRED_MODULES, language
    # No translation gaps (clinical review status is reported separately: tests/test_content_review.py).
    assert not [w for w in report.warnings if "modules/" in w and "clinically reviewed" not in w]
    relaxation = report.modules.get("progressive_muscle_relaxation", "en")
    assert relaxation is not None
    full_text = " ".join(step.text.lower() for step in relaxation.steps)
    for group in (
        "hands",
        "forearms",
        "upper arms",
        "forehead",
        "jaw",
        "neck",
        "shoulders",
        "chest",
        "stomach",
        "lower back",
        "thighs",
        "calves",
        "feet",
    ):
        assert group in full_text, group


def test_preview_prints_a_module_step_by_step(cli: CommandLine) -> None:
    result = cli("content", "preview", "box_breathing", "--lang", "es", CONTENT_DIR=str(CONTENT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Respiración cuadrada  (breathing, about 3 min)")
    assert "[1/6]" in result.stdout and "[6/6]" in result.stdout
    missing = cli("content", "preview", "nope", CONTENT_DIR=str(CONTENT))
    assert missing.returncode == 1 and missing.stderr.startswith(
        "error: no module 'nope' (known: body_scan, "
    )
