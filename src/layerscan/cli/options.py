"""The options that several commands share, defined once so that they read and behave the same
everywhere: the config file, the report format (with --secrets-all), and handing the work to the
Celery cluster; --scan-threads; a switch that overrides the config; and the argparse type of a count."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ..report import FORMATS

_FORMAT_HELP = (
    "json: layerscan JSON (default); anchore: Anchore Engine image export; table: a summary; cyclonedx, spdx: SBOMs"
)


def add_shared_options(
    p: argparse.ArgumentParser, *, config: str, report_format: bool = False, celery: str | None = None
) -> None:
    """--config (`config`: what the command reads from it), --format and --secrets-all when the
    command writes reports, and --celery (`celery`: what it does with the cluster) when it can use one."""
    group = p.add_argument_group("shared options")
    group.add_argument("--config", metavar="config.yaml", help=f"Anchore-style config ({config})")
    if report_format:
        group.add_argument("--format", choices=sorted(FORMATS), default="json", help=_FORMAT_HELP)
        group.add_argument(
            "--secrets-all",
            action="store_true",
            help="report every match of the secret rules, also those the allow rules call examples, tests or "
            "docs of installed packages (overrides secrets_all); the JSON report counts them in stats.secrets_suppressed",
        )
    if celery is not None:
        group.add_argument("--celery", action="store_true", help=celery)


def add_config_switch(p: argparse._ActionsContainer, flag: str, help: str) -> None:
    """--X and --no-X, for a setting of the config: left None when neither is given, so the config decides."""
    p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help)


def add_scan_threads(p: argparse.ArgumentParser, *, overrides_config: bool) -> None:
    """--scan-threads; `overrides_config`: the command reads the config, whose scan_threads it overrides."""
    p.add_argument(
        "--scan-threads",
        type=positive("threads"),
        metavar="N",
        help="threads that may work on one layer at once"
        + (" (overrides scan_threads)" if overrides_config else "")
        + f"; default: the cores this process may use, here {len(os.sched_getaffinity(0))}",
    )


def positive(what: str) -> Callable[[str], int]:
    """An argparse type: a whole number of `what` (threads, workers, ...) from 1 up."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of {what}")
        return n

    return parse


def port_or_off(text: str) -> int:
    """An argparse type: a TCP port, or 0 for none (as the config's services.analyzer.port)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535) nor 0")
    return n
