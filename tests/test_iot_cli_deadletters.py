"""`cityhub iot deadletters get|delete|retry ID`: an operator reads one refused message,
retries it once the device is fixed, and deletes the ones beyond saving, from the shell."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from cityhub.cli import main
from conftest import free_port
from test_serve import serving

KEY = "cli-retry-key-0123456789"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _letters(url: str) -> list[dict[str, object]]:
    """The tenant's letters once the refused messages' batch wrote them."""
    deadline = time.monotonic() + 10
    while True:
        letters: list[dict[str, object]] = httpx.get(f"{url}/iot/v1/deadletters").json()
        if len(letters) == 2 or time.monotonic() > deadline:
            return letters
        time.sleep(0.05)


def test_one_letter_read_retried_and_deleted_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong, fixed = tmp_path / "wrong.json", tmp_path / "fixed.json"
    wrong.write_text(json.dumps({"attributes": {"st": {"name": "status", "type": "number"}}}))
    fixed.write_text(json.dumps({"attributes": {"st": {"name": "status", "type": "string"}}}))
    with serving(tmp_path / "hub.db", free_port()) as url:
        code, _, err = _cli(
            capsys, "iot", "devices", "create", "door-1", "--url", url, "--protocol", "http",
            "--entity-type", "Door", "--apikey", KEY, "--mapping", str(wrong),
        )  # fmt: skip
        assert code == 0, err
        for state in ("open", "shut"):
            sent = httpx.post(
                f"{url}/iot/v1/json",
                params={"k": KEY, "i": "door-1"},
                content=f"st|{state}",
                headers={"Content-Type": "text/plain"},
            )
            assert sent.status_code == 400
        first, second = (str(letter["id"]) for letter in _letters(url))
        code, out, _ = _cli(capsys, "iot", "deadletters", "get", first, "--url", url)
        assert code == 0 and json.loads(out)["payload"] == "st|open"
        code, _, err = _cli(capsys, "iot", "deadletters", "retry", first, "--url", url)
        assert code == 1 and err.startswith("cityhub iot: 400 Bad request data: payload field")
        assert len(err.strip().splitlines()) == 1
        code, _, err = _cli(
            capsys, "iot", "devices", "update", "door-1", "--url", url, "--mapping", str(fixed)
        )
        assert code == 0, err
        code, out, err = _cli(capsys, "iot", "deadletters", "retry", first, "--url", url)
        assert (code, out.strip()) == (0, "ok"), err
        entity = httpx.get(f"{url}/ngsi-ld/v1/entities/urn:ngsi-ld:Door:door-1").json()
        assert entity["status"]["value"] == "open"
        code, out, _ = _cli(capsys, "iot", "deadletters", "delete", second, "--url", url)
        assert (code, out.strip()) == (0, "ok")
        code, out, _ = _cli(capsys, "iot", "deadletters", "list", "--url", url)
        assert code == 0 and json.loads(out) == []
        code, _, err = _cli(capsys, "iot", "deadletters", "get", first, "--url", url)
        assert code == 1 and "404" in err
