"""A password in a URL the hub prints (a bad CITYHUB_MQTT, a bad --url) is masked: stderr goes
to the journal, which more people read than the settings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from cityhub.cli import main
from cityhub.ingest.agent.mqtt import parse_broker
from cityhub.masked_url import masked, masked_url, masked_urls
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.errors import NgsiLdError
from conftest import free_port


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mqtt://user:s3cret@:1883", "mqtt://user:***@:1883"),
        ("x = 'mqtts://u:p%40ss@h:8883/': no", "x = 'mqtts://u:***@h:8883/': no"),
        ("http://a:b@c@hub/x?y=1", "http://a:***@hub/x?y=1"),  # a raw @ in the password
        ("mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1883"),
        ("mqtt://token@host", "mqtt://token@host"),  # no password to hide
    ],
)
def test_the_password_of_a_url_is_masked(text: str, shown: str) -> None:
    assert masked(text) == shown


@pytest.mark.parametrize(
    "url", ["mqtt://user:s3cret@:1883", "mqtt://user:s3cret@host:99999", "mqtt://user:s3cret@"]
)
@pytest.mark.parametrize("where", ["CITYHUB_MQTT", "--mqtt"])
def test_a_bad_broker_url_is_refused_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    where: str,
) -> None:
    """It printed mqtt://user:s3cret@:1883 twice: as the value, and in the reason."""
    argv = ["serve", "--port", str(free_port()), "--db", str(tmp_path / "hub.db")]
    if where == "--mqtt":
        argv += ["--mqtt", url]
    else:
        monkeypatch.setenv(where, url)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cityhub: bad setting mqtt ({where}) = 'mqtt://user:***@"), err
    assert "s3cret" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "hub.db").exists()


def test_the_broker_url_parser_says_what_is_wrong_without_the_password() -> None:
    """The agent logs this message too (the MQTT southbound is off: ...)."""
    with pytest.raises(ValueError, match=r"mqtt://user:\*\*\*@:1883") as refused:
        parse_broker("mqtt://user:s3cret@:1883")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["iot", "devices", "list", "--url", "http://user:s3cret@hub:99999"],
        ["iot", "devices", "list", "--url", f"http://user:s3cret@127.0.0.1:{free_port()}"],
    ],
)
def test_a_hub_url_the_iot_command_cannot_use_is_named_without_its_password(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert "user:***@" in err and "s3cret" not in err and len(err.splitlines()) == 1, err


def test_an_import_to_a_hub_url_it_cannot_use_is_named_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,x\n1,2\n")
    url = f"http://user:s3cret@127.0.0.1:{free_port()}"
    argv = ["import", "csv", str(rows), "--type", "T", "--url", url, "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "user:***@" in err and "s3cret" not in err, err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://admin:hunter2@127.0.0.1:18451/notify?token=SECRET123",
            "http://admin:***@127.0.0.1:18451/notify",
        ),
        ("https://hub.example/ctx.jsonld#access_token=abc", "https://hub.example/ctx.jsonld"),
        ("mqtt://u:p@broker/topic?x=1", "mqtt://u:***@broker/topic"),
        ("http://receiver.example/notify", "http://receiver.example/notify"),
    ],
)
def test_a_url_in_the_log_has_no_password_query_or_fragment(url: str, shown: str) -> None:
    """Endpoints and @context URLs carry tokens in the query as often as in the userinfo."""
    assert masked_url(url) == shown
    assert masked_urls(f"failed: {url!r} (x)") == f"failed: {shown!r} (x)"


def test_a_context_that_cannot_be_fetched_is_logged_without_its_token(
    closed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = closed_url.replace("http://", "http://user:hunter2@") + "?token=SECRET123"
    with caplog.at_level(logging.WARNING, logger="cityhub.context"), pytest.raises(NgsiLdError):
        asyncio.run(ContextCache(timeout=2).term_map(url, count=False))
    assert "is not reachable" in caplog.text
    assert "hunter2" not in caplog.text and "SECRET123" not in caplog.text, caplog.text
