"""The options that several commands share, defined once so that they read and behave the same
everywhere: the config file, the report format, and handing the work to the Celery cluster."""

from __future__ import annotations

import argparse

from ..report import FORMATS

_FORMAT_HELP = (
    "json: layerscan JSON (default); anchore: Anchore Engine image export; table: a summary; cyclonedx, spdx: SBOMs"
)


def add_shared_options(
    p: argparse.ArgumentParser, *, config: str, report_format: bool = False, celery: str | None = None
) -> None:
    """--config (`config`: what the command reads from it), --format when the command writes
    reports, and --celery (`celery`: what it does with the cluster) when it can use one."""
    group = p.add_argument_group("shared options")
    group.add_argument("--config", metavar="config.yaml", help=f"Anchore-style config ({config})")
    if report_format:
        group.add_argument("--format", choices=sorted(FORMATS), default="json", help=_FORMAT_HELP)
    if celery is not None:
        group.add_argument("--celery", action="store_true", help=celery)
