"""The content's YAML is read by libyaml when PyYAML has it: the same documents, lines and error messages as
PyYAML's own parser gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.content.catalog import compose_yaml, load_yaml, yaml_problem

CONTENT = Path(__file__).resolve().parent.parent / "content"


def _shape(node: yaml.Node) -> object:
    """What the loaders use of a node: its kind, tag, value, block style and line."""
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style or None, node.start_mark.line)
    if isinstance(node, yaml.SequenceNode):
        return ("sequence", node.tag, node.start_mark.line, [_shape(n) for n in node.value])
    assert isinstance(node, yaml.MappingNode)
    return ("mapping", node.tag, node.start_mark.line, [(_shape(k), _shape(v)) for k, v in node.value])


@pytest.mark.parametrize("path", sorted(CONTENT.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONTENT)))
def test_every_shipped_file_reads_as_pyyaml_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    node = compose_yaml(text)
    assert node is not None
    assert _shape(node) == _shape(yaml.compose(text, Loader=yaml.SafeLoader))
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text", ["a: ok\nb: [unclosed\n", "a: b: c\n", "\tkey: v\n", "- a\nb: c\n", "a: *nope\n"]
)
def test_a_broken_file_is_reported_as_pyyaml_reports_it(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as ours:
        compose_yaml(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.compose(text, Loader=yaml.SafeLoader)
    assert yaml_problem(Path("x.yaml"), ours.value) == yaml_problem(Path("x.yaml"), theirs.value)
    with pytest.raises(yaml.YAMLError):
        load_yaml(text)
