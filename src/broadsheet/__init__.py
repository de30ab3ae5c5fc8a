"""Broadsheet: a self-hosted daily research-papers service."""

__version__ = "0.1.0"
