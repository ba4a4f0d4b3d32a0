"""Settings are checked at start: a value no deployment needs, infinity or NaN is one line and
exit 2, never a hub that starts and then answers 500."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.settings import Settings
from conftest import BASE, free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something listens on: a setting that slipped through fails there, not by serving."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("TEMPORAL_LIMIT", "9223372036854775807", "less than or equal to 1000000"),
        ("MAX_BODY", "99999999999999999999999", "less than or equal to 4294967296"),
        ("NOTIFY_MEMORY_MB", "99999999999999", "less than or equal to 1048576"),
        ("NOTIFY_QUEUE_MAX", "99999999999999", "less than or equal to 10000000"),
        ("DEADLETTER_MAX", "99999999999999", "less than or equal to 10000000"),
        ("QUERY_TIMEOUT", "1e308", "less than or equal to 86400"),
        ("QUERY_TIMEOUT", "inf", "a finite number"),
        ("CONTEXT_TTL", "inf", "a finite number"),
        ("CONTEXT_TTL", "1e12", "less than or equal to 315360000"),
        ("HISTORY_DAYS", "inf", "a finite number"),
        ("HISTORY_DAYS", "1e300", "less than or equal to 36500"),
        # NaN was reported against a bound it has nothing to do with
        ("INGEST_BATCH_MS", "nan", "a finite number"),
        ("QUERY_TIMEOUT", "nan", "a finite number"),
        ("NOTIFY_BACKOFF", "nan", "a finite number"),
    ],
)
def test_a_value_beyond_the_bounds_stops_serve_before_it_serves(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
    name: str,
    value: str,
    reason: str,
) -> None:
    monkeypatch.setenv(f"CITYHUB_{name}", value)
    db = tmp_path / "hub.db"
    assert main(["serve", "--port", str(taken_port), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"bad setting {name.lower()} (CITYHUB_{name}) = {value!r}: " in err, err
    assert reason in err and len(err.splitlines()) == 1, err
    assert not db.exists()


async def test_the_largest_temporal_limit_reads(tmp_path: Path) -> None:
    """A limit of 2**63 - 1 was accepted and every temporal read without lastN answered 500."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), temporal_limit=1_000_000))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            entity = {"id": "urn:ngsi-ld:T:1", "type": "T", "x": {"type": "Property", "value": 1}}
            assert (await client.post(f"{BASE}/entities", json=entity)).status_code == 201
            resp = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:T:1")
            assert resp.status_code == 200, resp.text
            resp = await client.get(f"{BASE}/temporal/entities", params={"type": "T"})
            assert resp.status_code == 200 and len(resp.json()) == 1, resp.text
    finally:
        await app.state.notifier.close()
        app.state.store.close()


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["backup", "x.bk"]])
def test_a_cityhub_toml_that_is_not_utf8_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: list[str],
) -> None:
    """A Latin-1 é from a Windows editor was a 34-line UnicodeDecodeError traceback, exit 1."""
    (tmp_path / "cityhub.toml").write_bytes(b'port = 1061\nhost = "\xe9"\n')
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err == (
        "cityhub: cannot read cityhub.toml: byte 0xe9 at offset 20 is not UTF-8; "
        "save the file as UTF-8\n"
    )
    assert not (tmp_path / "cityhub.db").exists()


@pytest.mark.parametrize("where", ["env", "flag"])
def test_an_empty_host_is_refused_rather_than_serving_every_interface(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
    where: str,
) -> None:
    """CITYHUB_HOST= (a blank EnvironmentFile line) or --host "" bound 0.0.0.0 and [::]."""
    argv = ["serve", "--port", str(taken_port), "--db", str(tmp_path / "hub.db")]
    if where == "env":
        monkeypatch.setenv("CITYHUB_HOST", "")
    else:
        argv += ["--host", ""]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bad setting host" in err and "write 0.0.0.0 (or ::)" in err, err
    assert len(err.splitlines()) == 1


def test_a_toml_key_written_as_the_variable_says_which_key_to_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It was "bad setting CITYHUB_PORT (CITYHUB_CITYHUB_PORT) = 11817: Extra inputs ..."."""
    (tmp_path / "cityhub.toml").write_text("CITYHUB_PORT = 11817\nbogus = 1\n")
    monkeypatch.chdir(tmp_path)
    assert main(["backup", "x.bk"]) == 2
    assert capsys.readouterr().err == (
        "cityhub: unknown key CITYHUB_PORT in cityhub.toml; write port (the setting's name in "
        "lowercase)\n"
        "cityhub: unknown key bogus in cityhub.toml; its keys are the settings' names in "
        "lowercase without CITYHUB_ (port = 1026)\n"
    )


@pytest.mark.parametrize(
    ("where", "written"),
    [("flag", "(--port) = 0"), ("env", "(CITYHUB_PORT) = '0'"), ("toml", "(cityhub.toml) = 0")],
)
def test_a_bad_setting_names_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    where: str,
    written: str,
) -> None:
    """A bad --port or toml value was blamed on CITYHUB_PORT, which was not even set."""
    monkeypatch.delenv("CITYHUB_PORT", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = ["serve", "--db", str(tmp_path / "hub.db")]
    if where == "flag":
        argv += ["--port", "0"]
    elif where == "env":
        monkeypatch.setenv("CITYHUB_PORT", "0")
    else:
        (tmp_path / "cityhub.toml").write_text("port = 0\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err == f"cityhub: bad setting port {written}: Input should be greater than or equal to 1\n"
    )


def test_a_host_that_cannot_be_bound_points_at_the_host_not_the_port(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The advice was "pick another with --port or CITYHUB_PORT" when the host was at fault."""
    db = tmp_path / "hub.db"
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so nothing resolves or binds
    assert main(["serve", "--host", "192.0.2.1", "--port", "1026", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityhub: cannot listen on 192.0.2.1:1026 (")
    assert err.endswith("; check --host or CITYHUB_HOST\n") and "--port" not in err, err
    assert not db.exists()


def test_an_empty_database_path_is_named_as_the_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """CITYHUB_DB= gave "cannot open the database : No such file or directory"."""
    monkeypatch.setenv("CITYHUB_DB", "")
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", "1026"]) == 2
    assert capsys.readouterr().err == (
        "cityhub: bad setting db (CITYHUB_DB) = '': an empty path names no database file; "
        "give one, e.g. ./cityhub.db\n"
    )


def test_a_directory_given_as_the_database_is_named_as_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It was SQLite's "unable to open database file", which does not say why."""
    assert main(["serve", "--db", str(tmp_path), "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == (
        f"cityhub: cannot open the database {tmp_path}: it is a directory; give a file in it, "
        f"e.g. --db {tmp_path / 'cityhub.db'}\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_given_as_the_database_is_refused_not_waited_on(tmp_path: Path) -> None:
    """serve opened the path to lock it and waited for ever, without a word, for a writer."""
    fifo = tmp_path / "cityhub.db"
    os.mkfifo(fifo)
    args = ["serve", "--db", str(fifo), "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"cityhub: cannot open the database {fifo}: it is not a regular file (a FIFO)\n"
    )


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_the_embedded_broker_on_the_http_port_stops_the_hub_before_it_serves(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
) -> None:
    """Each port was free on its own: the database was created, the broker took the port in
    the lifespan, and uvicorn then failed to bind it (exit 3)."""
    import uvicorn

    import cityhub.cli

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    monkeypatch.setattr(cityhub.cli, "tune_runtime", lambda: None)
    port = free_port()
    monkeypatch.setenv("CITYHUB_MQTT_EMBEDDED_PORT", str(port))
    db = tmp_path / "hub.db"
    assert main([command, "--port", str(port), "--mqtt", "embedded", "--db", str(db)]) == 2
    assert capsys.readouterr().err == (
        f"cityhub: the embedded MQTT broker and HTTP cannot share port {port}; pick another "
        "with CITYHUB_MQTT_EMBEDDED_PORT or --port\n"
    )
    assert not served and not db.exists()


def test_a_mistyped_variable_stops_the_command_as_a_mistyped_key_does(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
) -> None:
    """CITYHUB_HISTORY_DAY=30 was ignored without a word: the hub kept personal data for
    ever, while `histroy_days = 30` in cityhub.toml stopped it."""
    monkeypatch.setenv("CITYHUB_HISTORY_DAY", "30")
    monkeypatch.setenv("CITYHUB_BOGUS", "1")
    db = tmp_path / "hub.db"
    assert main(["serve", "--port", str(taken_port), "--db", str(db)]) == 2
    assert capsys.readouterr().err == (
        "cityhub: unknown variable CITYHUB_BOGUS (no setting has that name); README.md lists "
        "the settings\n"
        "cityhub: unknown variable CITYHUB_HISTORY_DAY (did you mean CITYHUB_HISTORY_DAYS?); "
        "README.md lists the settings\n"
    )
    assert not db.exists()


def test_the_variables_the_cli_and_the_tests_read_are_no_typos(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
) -> None:
    """CITYHUB_URL (cityhub iot) and the test suite's own variables are left alone."""
    for name, value in (
        ("CITYHUB_URL", "http://127.0.0.1:1026"),
        ("CITYHUB_SHARED_DATA", str(tmp_path)),
        ("CITYHUB_FUZZ_EXAMPLES", "5000"),
        ("CITYHUB_TEMPORAL_LIMIT", "10"),  # a setting, as docs/conformance.md runs it
        ("cityhub_log_level", "warning"),  # a setting, in lowercase: read, so no typo
    ):
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", str(taken_port), "--db", str(tmp_path / "hub.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cityhub: cannot listen on 127.0.0.1:{taken_port} ("), err


@pytest.mark.parametrize(
    ("where", "written"),
    [
        ("env", "(CITYHUB_CONTEXT_MIRRORS) = 1"),
        ("toml", "(cityhub.toml) = 1"),
    ],
)
def test_a_bad_mirror_names_its_setting_and_member(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
    where: str,
    written: str,
) -> None:
    """It was "bad setting context_mirrors_a (cityhub.toml)", with no cityhub.toml there."""
    monkeypatch.chdir(tmp_path)
    if where == "env":
        monkeypatch.setenv("CITYHUB_CONTEXT_MIRRORS", '{"https://a.example/c.jsonld": 1}')
    else:
        (tmp_path / "cityhub.toml").write_text(
            '[context_mirrors]\n"https://a.example/c.jsonld" = 1\n'
        )
    assert main(["serve", "--port", str(taken_port), "--db", str(tmp_path / "hub.db")]) == 2
    assert capsys.readouterr().err == (
        f"cityhub: bad setting context_mirrors['https://a.example/c.jsonld'] {written}: Input "
        "should be a valid string\n"
    )


def test_a_mirror_file_that_cannot_be_read_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
) -> None:
    """A typo in a mirror's path started fine; the first request needing that @context got
    503, on an offline site perhaps days later."""
    there = tmp_path / "sdm.jsonld"
    there.write_text('{"@context": {}}')
    mirrors = {
        "https://a.example/ok.jsonld": str(there),
        "https://a.example/typo.jsonld": str(tmp_path / "sdm.jsonl"),
        "https://a.example/folder.jsonld": str(tmp_path),
        "https://a.example/remote.jsonld": "https://mirror.example/remote.jsonld",
    }
    monkeypatch.setenv("CITYHUB_CONTEXT_MIRRORS", json.dumps(mirrors))
    db = tmp_path / "hub.db"
    assert main(["serve", "--port", str(taken_port), "--db", str(db)]) == 2
    assert capsys.readouterr().err == (
        "cityhub: bad setting context_mirrors['https://a.example/typo.jsonld'] "
        f"(CITYHUB_CONTEXT_MIRRORS) = '{tmp_path / 'sdm.jsonl'}': cannot read the file: No "
        "such file or directory\n"
        "cityhub: bad setting context_mirrors['https://a.example/folder.jsonld'] "
        f"(CITYHUB_CONTEXT_MIRRORS) = '{tmp_path}': cannot read the file: Is a directory\n"
    )
    assert not db.exists()


def test_a_folder_named_cityhub_toml_is_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
) -> None:
    """pydantic skips a settings path that is no file: the hub started on its defaults."""
    (tmp_path / "cityhub.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", str(taken_port)]) == 2
    assert capsys.readouterr().err == "cityhub: cannot read cityhub.toml: it is a folder\n"
    assert not (tmp_path / "cityhub.db").exists()


def test_notify_outbox_max_is_off_or_at_least_a_thousand_rows() -> None:
    """A bound of a few rows would give up what a short outage leaves on disk."""
    import pydantic

    assert Settings(notify_outbox_max=0).notify_outbox_max == 0
    assert Settings(notify_outbox_max=1000).notify_outbox_max == 1000
    with pytest.raises(pydantic.ValidationError, match="at least 1000"):
        Settings(notify_outbox_max=10)


NUMBERS = [name for name, f in Settings.model_fields.items() if f.annotation in (int, float)]


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("word", ["true", "false"])
def test_true_or_false_in_cityhub_toml_is_no_number(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    word: str,
) -> None:
    """history_days = true was read as 1 and kept one day of history; the variable's true was
    refused: the file's is refused with the same line."""
    monkeypatch.chdir(tmp_path)
    variable = f"CITYHUB_{name.upper()}"
    monkeypatch.setenv(variable, word)
    assert main(["backup", "x.bk"]) == 2
    from_env = capsys.readouterr().err
    monkeypatch.delenv(variable)
    (tmp_path / "cityhub.toml").write_text(f"{name} = {word}\n")
    assert main(["backup", "x.bk"]) == 2
    from_file = capsys.readouterr().err
    assert from_file == from_env.replace(f"({variable})", "(cityhub.toml)"), from_file
    assert from_file.startswith(f"cityhub: bad setting {name} (cityhub.toml) = {word!r}: ")
    assert len(from_file.splitlines()) == 1


def test_every_number_setting_is_checked_for_true_and_false() -> None:
    """The loop above covers the settings the report named, so it cannot pass on none."""
    assert {"history_days", "port", "query_timeout", "temporal_limit"} <= set(NUMBERS)


@pytest.mark.parametrize(
    ("text", "where"),
    [("port = \n", "(at line 1, column 8)"), ("port = 1\nport = 2\n", "(at line 2, column")],
)
def test_a_cityhub_toml_that_does_not_parse_is_named(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    where: str,
) -> None:
    """It said "bad settings: Invalid value (at line 1, column 8)": no file, no setting."""
    (tmp_path / "cityhub.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--db", str(tmp_path / "hub.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityhub: cannot read cityhub.toml: ") and where in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "hub.db").exists()
