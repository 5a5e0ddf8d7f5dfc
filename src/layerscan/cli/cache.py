"""`layerscan cache ls|stats|prune|clear|verify`: look after the layer cache and the result cache."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from ..errors import ExitCode
from ..store.layers import DIRNAME, GB, LayerCache
from ..store.results import open_store
from ..store.results.model import Store

CACHES = ("layers", "results")

NAME = "cache"
HELP = "list, measure, prune, clear or verify the layer cache and the result cache"
DESCRIPTION = """\
Two caches live under tmp_dir. The layer cache keeps compressed layer blobs in
<tmp_dir>/anchore_layercache/sha256/<hex> (Anchore's layout); entries in use by a running
analysis are never removed. The result cache keeps each layer's scan result and each image's
analysis, per configuration, in <tmp_dir>/layerscan_resultcache, or in Redis when the config
sets result_cache_url. Both evict the least recently used entries first. Every verb but
verify acts on both unless --only names one.
"""
EPILOG = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="config.yaml", help="read tmp_dir, the sizes and result_cache_url from here"
    )
    common.add_argument("--tmp-dir", metavar="DIR", help="the tmp_dir whose caches to use (overrides the config)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    both = argparse.ArgumentParser(add_help=False, parents=[common])
    both.add_argument("--only", choices=CACHES, help="act on this cache alone")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("ls", parents=[both], help="list entries, least recently used first")
    verbs.add_parser("stats", parents=[both], help="entries, bytes and limit; pinned layers and interrupted downloads")
    prune = verbs.add_parser(
        "prune",
        parents=[both],
        help="evict least recently used entries down to the limit; remove what dead processes left behind",
    )
    prune.add_argument(
        "--max-gigabytes",
        type=float,
        metavar="GB",
        help="prune each cache down to this size (decimal GB) instead of its configured limit",
    )
    verbs.add_parser("clear", parents=[both], help="remove every entry not in use")
    verbs.add_parser(
        "verify", parents=[common], help="re-check every layer's sha256; drop corrupt ones (exit 1 if any)"
    )


def run(args: argparse.Namespace) -> int:
    verb = {"ls": _ls, "stats": _stats, "prune": _prune, "clear": _clear, "verify": _verify}[args.verb]
    return verb(args)


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    return dataclasses.replace(config, tmp_dir=args.tmp_dir) if args.tmp_dir else config


def _layers(config: Config) -> LayerCache:
    # The configured size applies even when the cache is disabled: it bounds what prune keeps.
    return LayerCache(Path(config.tmp_dir) / DIRNAME, config.layer_cache_max_gigabytes * GB)


def _each(args: argparse.Namespace, on_layers: Callable[[LayerCache], Any], on_results: Callable[[Store], Any]) -> dict:
    """{"layers": on_layers(the layer cache), "results": on_results(the result store)}, less what --only leaves out."""
    config = _config(args)
    out: dict[str, Any] = {}
    if args.only in (None, "layers"):
        with closing(_layers(config)) as layers:
            out["layers"] = on_layers(layers)
    if args.only in (None, "results"):
        with closing(open_store(config)) as store:
            out["results"] = on_results(store)
    return out


def _print_json(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ls(args: argparse.Namespace) -> int:
    found = _each(
        args,
        lambda c: (str(c.root), c.entries()),
        lambda s: (s.where(), s.entries()),
    )
    if args.json:
        _print_json({name: [dataclasses.asdict(e) for e in entries] for name, (_, entries) in found.items()})
        return 0
    if "layers" in found:
        where, layer_entries = found["layers"]
        print(f"layer cache {where}: {len(layer_entries)} entries")
        for e in layer_entries:
            print(f"{e.digest}  {e.size:>14,}  {_when(e.last_access)}{'  pinned' if e.pinned else ''}")
    if "results" in found:
        where, result_entries = found["results"]
        print(f"result cache {where}: {len(result_entries)} entries")
        for r in result_entries:
            print(f"{r.key}  {r.kind:<5}  {r.subject}  {r.size:>12,}  {_when(r.last_access)}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    found = _each(args, lambda c: c.stats(), lambda s: s.stats())
    if args.json:
        _print_json({name: dataclasses.asdict(s) for name, s in found.items()})
        return 0
    if "layers" in found:
        s = found["layers"]
        print(f"layer cache:  {s.root}")
        print(f"  entries:      {s.entries} ({s.pinned} in use)")
        print(f"  size:         {s.bytes:,} of {s.max_bytes:,} bytes ({100 * s.bytes / s.max_bytes:.1f}%)")
        print(f"  interrupted:  {s.temp_files} download(s) in progress or left behind")
    if "results" in found:
        r = found["results"]
        print(f"result cache: {r.where}")
        print(f"  entries:      {r.layers} layer results, {r.images} image analyses")
        print(f"  size:         {r.bytes:,} of {r.max_bytes:,} bytes ({100 * r.bytes / r.max_bytes:.1f}%)")
    return 0


def _prune(args: argparse.Namespace) -> int:
    target = None if args.max_gigabytes is None else int(args.max_gigabytes * GB)

    def layers(cache: LayerCache) -> dict[str, int]:
        freed = cache.prune(target)
        s = cache.stats()
        return {"freed_bytes": freed, "bytes": s.bytes, "entries": s.entries}

    def results(store: Store) -> dict[str, int]:
        freed = store.prune(target)
        s = store.stats()
        return {"freed_bytes": freed, "bytes": s.bytes, "entries": s.layers + s.images}

    found = _each(args, layers, results)
    if args.json:
        _print_json(found)
    else:
        for name, r in found.items():
            print(f"{name}: freed {r['freed_bytes']:,} bytes; {r['entries']} entries, {r['bytes']:,} bytes left")
    return 0


def _clear(args: argparse.Namespace) -> int:
    found = _each(
        args, lambda c: dict(zip(("removed", "kept_in_use"), c.clear(), strict=True)), lambda s: {"removed": s.clear()}
    )
    if args.json:
        _print_json(found)
        return 0
    for name, r in found.items():
        kept = r.get("kept_in_use", 0)
        print(
            f"{name}: removed {r['removed']} entries" + (f"; kept {kept} in use by a running analysis" if kept else "")
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    with closing(_layers(_config(args))) as cache:
        results = cache.verify()
    bad = [r for r in results if not r.ok]
    if args.json:
        _print_json([dataclasses.asdict(r) for r in results])
    else:
        for r in results:
            state = "ok" if r.ok else "CORRUPT, dropped" if r.dropped else "CORRUPT, in use: dropped on its next read"
            print(f"{r.digest}  {state}")
        print(f"{len(results)} entries checked, {len(bad)} corrupt")
    return ExitCode.FINDINGS if bad else ExitCode.OK  # FINDINGS: corrupt entries were found and dropped
