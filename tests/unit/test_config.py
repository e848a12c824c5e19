import json

import pytest

from lalm_audit.config import Config, config_json_schema, load_config, parse_config, stable_hash
from lalm_audit.errors import ConfigError
from tests.conftest import REPO

MINIMAL = {"datasets": {"d": {"loader": "table", "path": "t.csv"}}}


def test_minimal_config_fills_defaults():
    cfg = parse_config(MINIMAL)
    assert cfg.audio.sample_rate == 16000
    assert cfg.datasets["d"].columns.text == "text"
    assert cfg.audit_datasets() == ["d"]


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"sed": 1}, "'sed'"),
        ({"audio": {"max_duration": 3}}, "'audio.max_duration'"),
        (
            {"datasets": {"d": {"loader": "table", "path": "t.csv", "colums": {}}}},
            "'datasets.d.colums'",
        ),
        (
            {"datasets": {"d": {"loader": "table", "path": "t.csv", "columns": {"txt": "a"}}}},
            "'datasets.d.columns.txt'",
        ),
    ],
)
def test_unknown_keys_are_errors_that_name_the_key(patch, key):
    with pytest.raises(ConfigError) as exc:
        parse_config({**MINIMAL, **patch})
    assert f"unknown key {key}" in str(exc.value)


def test_bad_values_are_reported_with_location():
    with pytest.raises(ConfigError, match=r"audio.long_clip_policy"):
        parse_config({**MINIMAL, "audio": {"long_clip_policy": "drop"}})
    with pytest.raises(ConfigError, match=r"must match"):
        parse_config({"datasets": {"bad name": {"loader": "table", "path": "t.csv"}}})
    with pytest.raises(ConfigError, match=r"both member_splits and nonmember_splits"):
        parse_config(
            {
                "datasets": {
                    "d": {
                        "loader": "table",
                        "path": "t",
                        "member_splits": ["a"],
                        "nonmember_splits": ["a"],
                    }
                }
            }
        )
    with pytest.raises(ConfigError, match=r"librispeech needs member_splits"):
        parse_config({"datasets": {"d": {"loader": "librispeech", "root": "x"}}})


def test_shipped_configs_are_valid():
    demo = load_config(REPO / "config" / "demo.yaml")
    assert demo.demo is not None
    assert set(demo.audit_datasets()) == {
        "demo-matched",
        "demo-shifted",
        "demo-partial",
        "demo-binding",
    }
    assert demo.datasets["demo-pretrain"].role == "train_pool"
    example = load_config(REPO / "config" / "config.yaml")
    assert {d.loader for d in example.datasets.values()} == {"table", "librispeech", "hf_parquet"}


def test_generated_schema_matches_committed_schema():
    committed = json.loads((REPO / "workflow" / "schemas" / "config.schema.json").read_text())
    assert committed == config_json_schema(), (
        "run: lalm-audit config-schema -o workflow/schemas/config.schema.json"
    )


def test_schema_rejects_unknown_keys_like_the_models():
    from snakemake.utils import validate

    schema_path = str(REPO / "workflow" / "schemas" / "config.schema.json")
    validate(dict(MINIMAL), schema_path, set_default=False)
    with pytest.raises(Exception, match="'sed' was unexpected"):
        validate({**MINIMAL, "sed": 1}, schema_path, set_default=False)


def test_stable_hash_ignores_key_order_but_not_values():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert stable_hash(Config.model_validate(MINIMAL)) == stable_hash(
        Config.model_validate(MINIMAL).model_dump(mode="json")
    )


def test_every_section_model_is_reachable_from_config():
    """A section class that is defined but never added to Config is dead config (and silently unvalidated)."""
    import inspect

    from lalm_audit import config as c

    reachable: set[type] = set()

    def walk(model: type) -> None:
        if model in reachable:
            return
        reachable.add(model)
        for f in model.model_fields.values():
            for t in _types(f.annotation):
                if inspect.isclass(t) and issubclass(t, c.Strict):
                    walk(t)

    walk(c.Config)
    defined = {
        m
        for _, m in inspect.getmembers(c, inspect.isclass)
        if issubclass(m, c.Strict) and m not in (c.Strict, c.DatasetBase)
    }
    assert defined <= reachable, sorted(m.__name__ for m in defined - reachable)


def _types(annotation):
    import typing

    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [t for a in args for t in _types(a)]
