"""Settings: defaults that follow one another (BASE_URL follows the port served on)."""

from __future__ import annotations

import pytest

from broadsheet.config import Settings


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(f"BROADSHEET_{name}", raising=False)


def test_base_url_follows_the_port_served_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().base_url == "http://localhost:8000"
    monkeypatch.setenv("BROADSHEET_PORT", "8611")  # as `broadsheet serve --port 8611` sets it
    assert Settings().base_url == "http://localhost:8611"
    assert "base_url" not in Settings().model_fields_set  # pages still follow the address reached


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("0.0.0.0", "http://localhost:8611"),
        ("::", "http://localhost:8611"),
        ("127.0.0.1", "http://localhost:8611"),
        ("papers.lan", "http://papers.lan:8611"),
        ("192.168.1.5", "http://192.168.1.5:8611"),
        ("fe80::1", "http://[fe80::1]:8611"),
    ],
)
def test_base_url_follows_the_host_served_on(host: str, address: str) -> None:
    assert Settings(host=host, port=8611).base_url == address


def test_base_url_when_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADSHEET_PORT", "8611")
    monkeypatch.setenv("BROADSHEET_BASE_URL", "https://papers.example.org")
    assert Settings().base_url == "https://papers.example.org"


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings(port=70_000)
