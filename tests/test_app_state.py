"""app.state holds the hub's services as plain attributes, and still acts as Starlette's State."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings


def test_services_are_plain_attributes_of_app_state(tmp_path: Path) -> None:
    """Read on every request: found by the normal look-up, not through __getattr__ after a
    thrown-away AttributeError (app_state.py)."""
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    try:
        own = vars(app.state)
        for name in ("settings", "contexts", "entities", "committer", "store"):
            assert own[name] is getattr(app.state, name)
        app.state.extra = 1
        assert app.state["extra"] == 1 and "extra" in list(app.state)
        del app.state.extra
        with pytest.raises(AttributeError, match="extra"):
            _ = app.state.extra
        assert getattr(app.state, "extra", None) is None
    finally:
        app.state.store.close()
