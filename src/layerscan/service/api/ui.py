"""The web page, behind the API's auth: GET /ui (the queue by state, the analyzers, every image;
refreshed live by static/ui.js from /ui/state.json) and GET /ui/images/{digest} (layers,
packages by type, file count, secrets masked, links to the JSON reports).

Server-rendered (Jinja2, autoescaped) with a little JavaScript; it reads what the API reads:
the store, and the stored reports. Secrets show only their masked form, as the reports hold them.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..store import ANALYZED, STATES, ImageRecord, WorkerRecord
from .anchore_image import timestamp
from .content import CONTENT_TYPES, artifacts, content, image_data
from .context import ApiContext, context_of
from .errors import ApiError
from .images import digest_param

PACKAGE_TYPES = tuple(t for t in CONTENT_TYPES if t not in ("files", "malware"))
REPORT_KINDS = {"anchore": "Anchore image export", "layerscan": "layerscan JSON report"}

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.PackageLoader("layerscan.service.api", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


def state(ctx: ApiContext) -> dict[str, Any]:
    """What the index page shows; ui.js polls it."""
    records = ctx.store.list_images()
    depth = ctx.store.queue_depth()
    return {
        "queue": {s: depth.get(s, 0) for s in STATES},
        "workers": [_worker(w) for w in ctx.store.list_workers()],
        "images": [_image_row(r) for r in reversed(records)],  # newest first
    }


def index(request: Request) -> Response:
    return templates.TemplateResponse(request, "index.html", {"state": state(context_of(request)), "states": STATES})


def state_json(request: Request) -> Response:
    return JSONResponse(state(context_of(request)), headers={"Cache-Control": "no-store"})


def image_page(request: Request) -> Response:
    ctx = context_of(request)
    record = ctx.image(digest_param(request))
    page: dict[str, Any] = {"image": _image_row(record), "layers": [], "packages": {}, "secrets": [], "files": None}
    if record.analysis_status == ANALYZED:
        export = ctx.analyzed(record)
        page["layers"] = _layers(export)
        page["packages"] = {t: rows for t in PACKAGE_TYPES if (rows := content(export, t))}
        page["files"] = record.summary.get("files")
        page["secrets"] = _secrets(ctx, record, export)
    page["reports"] = [
        (kind, label) for kind, label in REPORT_KINDS.items() if ctx.store.get_report(record.image_digest, kind)
    ]
    return templates.TemplateResponse(request, "image.html", page)


def report(request: Request) -> Response:
    """A stored report as it is (the Anchore export, or the layerscan JSON with masked secrets)."""
    ctx = context_of(request)
    digest = digest_param(request)
    kind = str(request.path_params["kind"])
    if kind not in REPORT_KINDS:
        raise ApiError(404, f"no report kind {kind!r}; kinds: {', '.join(REPORT_KINDS)}")
    data = ctx.store.get_report(ctx.image(digest).image_digest, kind)
    if data is None:
        raise ApiError(404, f"image {digest} has no {kind} report")
    return Response(data, media_type="application/json")


def _image_row(r: ImageRecord) -> dict[str, Any]:
    packages = sum(n for t, n in r.summary.items() if t in PACKAGE_TYPES)
    return {
        "digest": r.image_digest,
        "tags": list(r.fulltags),
        "status": r.analysis_status,
        "created_at": timestamp(r.created_at),
        "analyzed_at": timestamp(r.analyzed_at),
        "worker": r.worker_id,
        "attempts": r.attempts,
        "error": r.last_error,
        "packages": packages if r.summary else None,
        "files": r.summary.get("files"),
        "secrets": r.summary.get("secrets"),
    }


def _worker(w: WorkerRecord) -> dict[str, Any]:
    return {
        "id": w.worker_id,
        "address": f"{w.host}:{w.port}",
        "threads": w.max_threads,
        "busy": w.busy,
        "status": w.status,
        "last_seen": timestamp(w.last_seen),
    }


def _layers(export: Any) -> list[dict[str, Any]]:
    report = image_data(export).get("image_report") or {}
    return [
        {"digest": h.get("Id"), "size": h.get("Size"), "created_by": h.get("CreatedBy", "")}
        for h in report.get("docker_history") or []
        if h.get("Id") != "<missing>"
    ]


def _secrets(ctx: ApiContext, record: ImageRecord, export: Any) -> list[dict[str, Any]]:
    """The layerscan report's findings (masked values); an imported image has only Anchore's
    secret_search (rule, path, line: no value at all)."""
    raw = ctx.store.get_report(record.image_digest, "layerscan")
    if raw is not None:
        return [
            {"rule": s["rule"], "path": s["path"], "line": s["line"], "match": s["match"], "final": s["in_final_image"]}
            for s in json.loads(raw).get("secrets", [])
            if s.get("kind", "secret") == "secret"
        ]
    return [  # Anchore's line numbers are 0-based
        {"rule": m["name"], "path": a["path"], "line": line + 1, "match": "", "final": True}
        for a in artifacts(export, "secret_search")
        for m in a["matches"]
        for line in m["lines"]
    ]


ROUTES = [
    Route("/ui", index, methods=["GET"]),
    Route("/ui/state.json", state_json, methods=["GET"]),
    Route("/ui/images/{digest}", image_page, methods=["GET"]),
    Route("/ui/images/{digest}/report/{kind}.json", report, methods=["GET"]),
    Mount("/ui/static", StaticFiles(packages=[("layerscan.service.api", "static")]), name="static"),
]
