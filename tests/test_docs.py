"""Documentation stays true: every setting and every CLI command is in the README, and a bad
setting is reported by the name the user wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityhub.cli import load_settings, main, parser
from cityhub.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"CITYHUB_{name.upper()}"
        for name in Settings.model_fields
        if f"`CITYHUB_{name.upper()}`" not in README
    ]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_setting_has_a_description() -> None:
    assert all(f.description for f in Settings.model_fields.values())


def test_every_command_is_documented() -> None:
    sub = next(a for a in parser()._actions if a.dest == "command")
    commands = list(sub.choices)  # type: ignore[union-attr]
    missing = [c for c in commands if f"cityhub {c}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_a_bad_setting_is_named_as_the_user_wrote_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYHUB_SYNC", "off")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "bad setting sync (CITYHUB_SYNC) = 'off'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mqtt://:1883", "not an MQTT broker URL"),
        ("mqtt://broker:99999", "Port out of range"),
        ("mqtts://broker:tls", "Port could not be cast"),
    ],
)
def test_a_broker_url_that_does_not_parse_stops_the_hub_before_it_serves(
    capsys: pytest.CaptureFixture[str], url: str, reason: str
) -> None:
    # Before, the hub started and served with its MQTT southbound quietly off.
    assert main(["serve", "--port", "1", "--mqtt", url]) == 2
    err = capsys.readouterr().err
    assert f"bad setting mqtt (--mqtt) = {url!r}" in err and reason in err, err


def test_a_broker_url_on_port_0_is_refused_not_taken_for_1883(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Port 0 was read as no port, so the hub went to 1883, a broker nobody named."""
    assert load_settings(mqtt="mqtt://broker:0") is None
    err = capsys.readouterr().err
    assert "bad setting mqtt (--mqtt) = 'mqtt://broker:0'" in err and "port 0" in err, err


def test_every_log_level_is_in_the_help_and_the_readme() -> None:
    """critical and trace are accepted, but the help and the README listed four levels."""
    from typing import get_args

    levels = get_args(Settings.model_fields["log_level"].annotation)
    serve = next(a for a in parser()._actions if a.dest == "command").choices["serve"]  # type: ignore[index]
    help_text = next(a.help for a in serve._actions if a.dest == "log_level")
    row = next(line for line in README.splitlines() if line.startswith("| `CITYHUB_LOG_LEVEL`"))
    assert all(level in (help_text or "") and f"`{level}`" in row for level in levels)


def test_help_names_the_ranges_and_variables_the_commands_take(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, words in (
        (["import", "csv", "--help"], "1 to 100000"),
        (["iot", "devices", "list", "--help"], "CITYHUB_URL"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert words in " ".join(capsys.readouterr().out.split())
    assert "`CITYHUB_URL`" in README and "1 to 100,000" in README


def test_demo_help_gives_the_database_it_uses(capsys: pytest.CaptureFixture[str]) -> None:
    """It said "(default ./cityhub.db, CITYHUB_DB)": the demo builds ./cityhub-demo.db, and
    never reads CITYHUB_DB (the city's own database, which it would rebuild)."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--db DB the demo's database (default ./cityhub-demo.db)" in text, text
    assert "CITYHUB_DB" not in text and "./cityhub.db" not in text
