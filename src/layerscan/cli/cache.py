"""`layerscan cache ls|stats|prune|clear|verify`: look after the layer cache of a tmp_dir."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path

from ..config import load_config
from ..errors import ExitCode
from ..store.layers import DIRNAME, GB, LayerCache


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="config.yaml", help="read tmp_dir and the cache size from this config")
    common.add_argument(
        "--tmp-dir", metavar="DIR", help="the tmp_dir whose anchore_layercache to use (overrides the config)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    p = sub.add_parser(
        "cache",
        help="list, measure, prune, clear or verify the layer cache",
        description="The layer cache keeps compressed layer blobs in <tmp_dir>/anchore_layercache/sha256/<hex> "
        "(Anchore's layout), least recently used evicted first. Entries in use by a running analysis are "
        "never removed.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("ls", parents=[common], help="list entries, least recently used first").set_defaults(func=_ls)
    verbs.add_parser(
        "stats", parents=[common], help="entries, bytes, limit, pinned, interrupted downloads"
    ).set_defaults(func=_stats)
    prune = verbs.add_parser(
        "prune", parents=[common], help="evict least recently used entries down to the limit; remove dead downloads"
    )
    prune.add_argument(
        "--max-gigabytes",
        type=float,
        metavar="GB",
        help="prune down to this size (decimal GB) instead of the configured limit",
    )
    prune.set_defaults(func=_prune)
    verbs.add_parser("clear", parents=[common], help="remove every entry not in use").set_defaults(func=_clear)
    verbs.add_parser(
        "verify", parents=[common], help="re-check every entry's sha256; drop corrupt ones (exit 1 if any)"
    ).set_defaults(func=_verify)


def _open(args: argparse.Namespace) -> LayerCache:
    config = load_config(args.config)
    tmp_dir = args.tmp_dir or config.tmp_dir
    # The configured size applies even when the cache is disabled: it bounds what prune keeps.
    return LayerCache(Path(tmp_dir) / DIRNAME, config.layer_cache_max_gigabytes * GB)


def _print_json(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ls(args: argparse.Namespace) -> int:
    entries = _open(args).entries()
    if args.json:
        _print_json([dataclasses.asdict(e) for e in entries])
        return 0
    for e in entries:
        print(f"{e.digest}  {e.size:>14,}  {_when(e.last_access)}{'  pinned' if e.pinned else ''}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    s = _open(args).stats()
    if args.json:
        _print_json(dataclasses.asdict(s))
        return 0
    print(f"cache:        {s.root}")
    print(f"entries:      {s.entries} ({s.pinned} in use)")
    print(f"size:         {s.bytes:,} of {s.max_bytes:,} bytes ({100 * s.bytes / s.max_bytes:.1f}%)")
    print(f"interrupted:  {s.temp_files} download(s) in progress or left behind")
    return 0


def _prune(args: argparse.Namespace) -> int:
    cache = _open(args)
    target = None if args.max_gigabytes is None else int(args.max_gigabytes * GB)
    freed = cache.prune(target)
    s = cache.stats()
    if args.json:
        _print_json({"freed_bytes": freed, "bytes": s.bytes, "entries": s.entries})
    else:
        print(f"freed {freed:,} bytes; {s.entries} entries, {s.bytes:,} bytes left")
    return 0


def _clear(args: argparse.Namespace) -> int:
    removed, kept = _open(args).clear()
    if args.json:
        _print_json({"removed": removed, "kept_in_use": kept})
    else:
        print(f"removed {removed} entries" + (f"; kept {kept} in use by a running analysis" if kept else ""))
    return 0


def _verify(args: argparse.Namespace) -> int:
    results = _open(args).verify()
    bad = [r for r in results if not r.ok]
    if args.json:
        _print_json([dataclasses.asdict(r) for r in results])
    else:
        for r in results:
            state = "ok" if r.ok else "CORRUPT, dropped" if r.dropped else "CORRUPT, in use: dropped on its next read"
            print(f"{r.digest}  {state}")
        print(f"{len(results)} entries checked, {len(bad)} corrupt")
    return ExitCode.FINDINGS if bad else ExitCode.OK  # FINDINGS: corrupt entries were found and dropped
