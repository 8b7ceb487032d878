import stat
from pathlib import Path

import pytest

from clarion.config import Settings, SettingsError


def test_embedded_default_generates_secrets_once_with_private_mode(tmp_path: Path) -> None:
    env = {"CLARION_DATA_DIR": str(tmp_path / "var")}
    first = Settings.from_env(env, config_file=None)
    assert first.database_url == f"sqlite:///{tmp_path / 'var' / 'clarion.db'}"
    assert set(first.generated) == {"admin_key", "secret_key"}
    for name in ("admin.key", "secret.key"):
        mode = stat.S_IMODE((tmp_path / "var" / name).stat().st_mode)
        assert mode == 0o600
    second = Settings.from_env(env, config_file=None)
    assert second.generated == ()
    assert (second.admin_key, second.secret_key) == (first.admin_key, first.secret_key)
    assert first.admin_key.startswith("clr_adm_")
    assert len(first.secret_key) == 32


def test_environment_overrides_and_config_file(tmp_path: Path) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text('port = 9000\nhost = "0.0.0.0"\n')
    env = {
        "CLARION_DATA_DIR": str(tmp_path),
        "CLARION_PORT": "9100",
        "CLARION_ADMIN_KEY": "clr_adm_fixed",
        "CLARION_SECRET_KEY": "ab" * 32,
        "CLARION_ALLOW_PRIVATE_ENDPOINTS": "1",
        "CLARION_BODY_LIMIT": "1000",
    }
    settings = Settings.from_env(env, config_file=config)
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"  # noqa: S104 - read from the file, not bound here
    assert settings.admin_key == "clr_adm_fixed"
    assert settings.secret_key == bytes.fromhex("ab" * 32)
    assert settings.allow_private_endpoints is True
    assert settings.body_limit == 1000
    assert settings.generated == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [("CLARION_PORT", "eighty"), ("CLARION_SECRET_KEY", "short")],
)
def test_bad_settings_are_named(tmp_path: Path, name: str, value: str) -> None:
    env = {"CLARION_DATA_DIR": str(tmp_path), name: value}
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env, config_file=None)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings.from_env({"CLARION_DATA_DIR": str(tmp_path)}, config_file=None)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
