"""Settings come from documented environment variables, parsed by their declared type."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import pytest

from voting.config import Settings, describe, load, setting
from voting.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class _Flags:
    """A section with the types Settings does not (yet) use."""

    enabled: bool = setting("TEST_ENABLED", False, "A flag.")
    limit: int | None = setting("TEST_LIMIT", None, "An optional number.")


def _sections() -> list[tuple[str, type[Any]]]:
    hints = typing.get_type_hints(Settings)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Settings)]


def _settings() -> list[tuple[str, str, dataclasses.Field[Any], Any]]:
    """(section, field, dataclass field, type) of every setting."""
    rows = []
    for section, cls in _sections():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            rows.append((section, f.name, f, hints[f.name]))
    return rows


def test_unset_variables_give_the_defaults() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.client_config == {}
    assert settings.topics.partitions == 8
    assert settings.redis.socket_timeout_s == 2.0
    assert settings.security.environment == "production"
    assert not settings.security.development


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "VOTING_UNKNOWN": "x"}) == Settings()


def test_from_env_without_a_mapping_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOTING_PARTITIONS", "3")

    assert Settings.from_env().topics.partitions == 3


def test_default_dicts_are_not_shared_between_instances() -> None:
    first, second = Settings(), Settings()
    first.kafka.client_config["acks"] = "all"

    assert second.kafka.client_config == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12", 12), (" 7 ", 7), ("-1", -1), ("0", 0)],
)
def test_int_settings_are_parsed(raw: str, expected: int) -> None:
    settings = Settings.from_env({"VOTING_PARTITIONS": raw, "VOTING_LEDGER_SHARDS": raw})

    assert settings.topics.partitions == expected
    assert settings.dynamodb.ledger_shards == expected


@pytest.mark.parametrize("raw", ["", "eight", "1.5", "0x10"])
def test_a_malformed_int_names_its_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="VOTING_PARTITIONS"):
        Settings.from_env({"VOTING_PARTITIONS": raw})


@pytest.mark.parametrize(("raw", "expected"), [("0.25", 0.25), ("3", 3.0), ("1e1", 10.0)])
def test_float_settings_are_parsed(raw: str, expected: float) -> None:
    settings = Settings.from_env({"VOTING_REDIS_SOCKET_TIMEOUT_S": raw})

    assert settings.redis.socket_timeout_s == expected
    assert isinstance(settings.redis.socket_timeout_s, float)


def test_a_malformed_float_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="VOTING_SHUTDOWN_GRACE_S"):
        Settings.from_env({"VOTING_SHUTDOWN_GRACE_S": "soon"})


def test_strings_are_taken_verbatim() -> None:
    raw = "  kafka-1:9092,kafka-2:9092 "

    assert Settings.from_env({"VOTING_KAFKA_BOOTSTRAP_SERVERS": raw}).kafka.bootstrap_servers == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_bool_settings_are_parsed(raw: str, expected: bool) -> None:
    assert load(_Flags, {"TEST_ENABLED": raw}).enabled is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "y"])
def test_a_malformed_bool_names_its_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="TEST_ENABLED"):
        load(_Flags, {"TEST_ENABLED": raw})


def test_optional_settings_are_none_when_empty_and_parsed_otherwise() -> None:
    assert load(_Flags, {}).limit is None
    assert load(_Flags, {"TEST_LIMIT": ""}).limit is None
    assert load(_Flags, {"TEST_LIMIT": "5"}).limit == 5
    with pytest.raises(ConfigError, match="TEST_LIMIT"):
        load(_Flags, {"TEST_LIMIT": "five"})


@pytest.mark.parametrize("environment", ["production", "development"])
def test_environment_accepts_production_and_development(environment: str) -> None:
    security = Settings.from_env({"VOTING_ENVIRONMENT": environment}).security

    assert security.environment == environment
    assert security.development is (environment == "development")


@pytest.mark.parametrize("raw", ["staging", "Development", "dev", "", " production"])
def test_environment_rejects_anything_else_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="VOTING_ENVIRONMENT") as caught:
        Settings.from_env({"VOTING_ENVIRONMENT": raw})

    assert "production" in str(caught.value)
    assert "development" in str(caught.value)


def test_client_config_is_a_json_object_of_strings() -> None:
    raw = '{"security.protocol": "SASL_SSL", "linger.ms": 5}'

    config = Settings.from_env({"VOTING_KAFKA_CLIENT_CONFIG": raw}).kafka.client_config

    assert config == {"security.protocol": "SASL_SSL", "linger.ms": "5"}


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_client_config_is_an_empty_object(raw: str) -> None:
    assert Settings.from_env({"VOTING_KAFKA_CLIENT_CONFIG": raw}).kafka.client_config == {}


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", "null", "true"])
def test_client_config_that_is_not_an_object_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="VOTING_KAFKA_CLIENT_CONFIG"):
        Settings.from_env({"VOTING_KAFKA_CLIENT_CONFIG": raw})


@pytest.mark.parametrize("raw", ["{", "{'a': 1}", "not json"])
def test_client_config_that_is_not_json_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="VOTING_KAFKA_CLIENT_CONFIG"):
        Settings.from_env({"VOTING_KAFKA_CLIENT_CONFIG": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("https://a.example", ("https://a.example",)),
        (" https://a.example , https://b.example,, ", ("https://a.example", "https://b.example")),
        ("*", ("*",)),
    ],
)
def test_list_settings_are_comma_separated(raw: str, expected: tuple[str, ...]) -> None:
    settings = Settings.from_env({"VOTING_GATEWAY_CORS_ORIGINS": raw})

    assert settings.gateway.cors_origins == expected


def test_every_field_of_every_section_has_an_env_and_a_doc() -> None:
    for section, name, f, _ in _settings():
        assert f.metadata.get("env", "").startswith(("VOTING_", "OTEL_")), f"{section}.{name}"
        assert str(f.metadata.get("doc", "")).strip(), f"{section}.{name}"


def test_every_section_is_a_dataclass_with_defaults() -> None:
    for section, cls in _sections():
        assert dataclasses.is_dataclass(cls), section
        cls()  # every setting has a default


def test_describe_lists_every_variable_exactly_once() -> None:
    variables = [env for env, _, _ in describe()]
    declared = [f.metadata["env"] for _, _, f, _ in _settings()]

    assert len(variables) == len(set(variables))
    assert variables == declared
    assert all(v.startswith(("VOTING_", "OTEL_")) for v in variables)


def test_describe_shows_defaults_and_docs() -> None:
    rows = {env: (default, doc) for env, default, doc in describe()}

    assert rows["VOTING_PARTITIONS"][0] == "8"
    assert rows["VOTING_KAFKA_CLIENT_CONFIG"][0] == "{}"
    assert rows["VOTING_ENVIRONMENT"][0] == "production"
    assert rows["VOTING_REDIS_SOCKET_TIMEOUT_S"][0] == "2.0"
    assert rows["VOTING_GATEWAY_CORS_ORIGINS"][0] == ""
    assert all(doc for _, doc in rows.values())


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING
    return f.default_factory()


def _sample(hint: Any, default: Any) -> tuple[str, Any]:
    """A raw value different from the default, and what it should parse to."""
    if hint is bool:
        return ("false", False) if default else ("true", True)
    if hint is int:
        return str(default + 11), default + 11
    if hint is float:
        return str(default + 0.5), default + 0.5
    if hint is str:
        return default + "-x", default + "-x"
    if typing.get_origin(hint) is typing.Literal:
        other = next(a for a in typing.get_args(hint) if a != default)
        return str(other), other
    if typing.get_origin(hint) is dict:
        return '{"k": "v"}', {"k": "v"}
    if typing.get_origin(hint) is tuple:
        return "x,y", ("x", "y")
    raise AssertionError(f"no sample for {hint!r}")


def test_every_variable_reaches_its_field() -> None:
    environ: dict[str, str] = {}
    expected: dict[tuple[str, str], Any] = {}
    for section, name, f, hint in _settings():
        default = _default(f)
        raw, value = _sample(hint, default)
        environ[f.metadata["env"]] = raw
        expected[(section, name)] = value

    settings = Settings.from_env(environ)

    for (section, name), value in expected.items():
        assert getattr(getattr(settings, section), name) == value, f"{section}.{name}"
