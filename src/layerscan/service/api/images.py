"""Anchore's image routes: submit, list, get, delete, and an analyzed image's content,
metadata and artifacts (anchore-format.md §5)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...refs import SHA256_DIGEST, ImageRef, RefError
from ..store import ANALYZING, STATES, ImageRecord
from ..submit import SubmitError, submit
from .anchore_image import anchore_image
from .content import CONTENT_TYPES, METADATA_TYPES, artifacts, content, metadata
from .context import ApiContext, context_of
from .errors import ApiError

IMAGE_ID = re.compile(r"[0-9a-f]{64}")
MAX_BODY = 1 << 20  # an analysis request is a few hundred bytes


# ---------------------------------------------------------------------------- parameters


def flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as Anchore's clients send it (True, true, False, false)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name}: expected true or false, got {value!r}")


def digest_param(request: Request) -> str:
    digest = str(request.path_params["digest"])
    if not SHA256_DIGEST.fullmatch(digest):
        raise ApiError(400, f"{digest!r} is not an image digest (sha256:<64 lowercase hex>)")
    return digest


def record_of(request: Request) -> ImageRecord:
    """The image a path names, by digest or by image id."""
    ctx = context_of(request)
    if "image_id" in request.path_params:
        image_id = str(request.path_params["image_id"])
        if not IMAGE_ID.fullmatch(image_id):
            raise ApiError(400, f"{image_id!r} is not an image id (64 lowercase hex)")
        record = ctx.store.get_image_by_id(image_id)
        if record is None:
            raise ApiError(404, f"no image with id {image_id}")
        return record
    return ctx.image(digest_param(request))


def analyzed_of(request: Request) -> tuple[ImageRecord, Any]:
    """The image a path names and its parsed Anchore export (404 until it is analyzed)."""
    record = record_of(request)
    return record, context_of(request).analyzed(record)


def images_response(ctx: ApiContext, records: list[ImageRecord]) -> JSONResponse:
    return JSONResponse([anchore_image(r, ctx.metadata(r), ctx.untagged_name(r)) for r in records])


async def json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError as e:
        raise ApiError(400, f"the request body is not JSON: {e}") from None


# ---------------------------------------------------------------------------- submit, list, get, delete


def analysis_request(body: Any) -> tuple[str | None, str | None]:
    """(tag, digest) of an ImageAnalysisRequest: the legacy fields, or `source.tag` / `source.digest`."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an ImageAnalysisRequest object")
    source = body.get("source")
    if source is not None:
        if not isinstance(source, dict) or len(source) != 1:
            raise ApiError(400, "source must hold exactly one of: tag, digest")
        ((kind, spec),) = source.items()
        if kind not in ("tag", "digest") or not isinstance(spec, dict):
            raise ApiError(400, f"source.{kind} is not supported; submit source.tag or source.digest")
        pullstring = _text(spec, "pullstring", f"source.{kind}")
        if kind == "tag":
            return pullstring, None
        return _text(spec, "tag", "source.digest"), pullstring
    tag, digest = _text(body, "tag", ""), _text(body, "digest", "")
    if tag is None:
        raise ApiError(400, "'tag' is a required property (with a digest too, the tag names it)")
    return tag, digest


def _text(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{where + '.' if where else ''}{key} must be a string")
    return value


async def add_image(request: Request) -> Response:
    ctx = context_of(request)
    force = flag(request, "force")
    flag(request, "autosubscribe", True)  # accepted and checked; layerscan watches no tags
    tag, digest = analysis_request(await json_body(request))
    try:
        record = await run_in_threadpool(submit, ctx.store, ctx.config, tag, digest, force)
    except SubmitError as e:
        raise ApiError(e.status, e.reason) from None
    return await run_in_threadpool(images_response, ctx, [record])


def list_images(request: Request) -> Response:
    ctx = context_of(request)
    history = flag(request, "history")
    status = request.query_params.get("analysis_status") or None
    if status is not None and status not in STATES:
        raise ApiError(400, f"analysis_status {status!r}: expected one of {', '.join(STATES)}")
    image_status = request.query_params.get("image_status") or "active"
    if image_status not in ("active", "all", "inactive", "deleting"):
        raise ApiError(400, f"image_status {image_status!r}: expected active, inactive, deleting or all")
    fulltag = request.query_params.get("fulltag") or None
    if fulltag is not None:
        try:
            fulltag = ImageRef.parse(fulltag).repo_tag()
        except RefError as e:
            raise ApiError(400, str(e)) from None
    records = ctx.store.list_images(fulltag=fulltag, analysis_status=status)
    if image_status != "all":
        records = [r for r in records if r.image_status == image_status]
    if fulltag is not None and not history and records:
        # Without history, the image the tag points at now: the one it was last seen on.
        records = [max(records, key=lambda r: r.tag_detected_at.get(str(fulltag)) or r.created_at)]
    return images_response(ctx, records)


def get_image(request: Request) -> Response:
    return images_response(context_of(request), [record_of(request)])


def delete_image(request: Request) -> Response:
    ctx = context_of(request)
    digest = digest_param(request)
    force = flag(request, "force")
    record = ctx.image(digest)
    if record.analysis_status == ANALYZING and not force:
        return JSONResponse(
            {"digest": digest, "status": "delete_failed", "detail": "cannot delete an image being analyzed; use force"}
        )
    if not ctx.store.delete_image(digest):
        raise ApiError(404, f"image {digest} not found")
    return JSONResponse({"digest": digest, "status": "deleting", "detail": None})


# ---------------------------------------------------------------------------- content, metadata, artifacts


def type_list(types: tuple[str, ...]) -> Callable[[Request], Response]:
    """GET …/content or …/metadata: the types there are, for an image that exists."""

    def route(request: Request) -> Response:
        record_of(request)
        return JSONResponse(list(types))

    return route


def image_content(request: Request) -> Response:
    record, export = analyzed_of(request)
    ctype = str(request.path_params["ctype"])
    rows = content(export, ctype)
    return JSONResponse({"imageDigest": record.image_digest, "content_type": ctype, "content": rows})


def image_metadata(request: Request) -> Response:
    record, export = analyzed_of(request)
    mtype = str(request.path_params["mtype"])
    text = metadata(export, mtype, record.manifest)
    return JSONResponse({"imageDigest": record.image_digest, "metadata_type": mtype, "metadata": text})


def image_artifacts(request: Request) -> Response:
    _, export = analyzed_of(request)
    return JSONResponse(artifacts(export, str(request.path_params["atype"])))


ROUTES = [
    Route("/images", add_image, methods=["POST"]),
    Route("/images", list_images, methods=["GET"]),
    Route("/images/by_id/{image_id}", get_image, methods=["GET"]),
    Route("/images/by_id/{image_id}/content", type_list(CONTENT_TYPES), methods=["GET"]),
    Route("/images/by_id/{image_id}/content/{ctype}", image_content, methods=["GET"]),
    Route("/images/{digest}", get_image, methods=["GET"]),
    Route("/images/{digest}", delete_image, methods=["DELETE"]),
    Route("/images/{digest}/content", type_list(CONTENT_TYPES), methods=["GET"]),
    Route("/images/{digest}/content/{ctype}", image_content, methods=["GET"]),
    Route("/images/{digest}/metadata", type_list(METADATA_TYPES), methods=["GET"]),
    Route("/images/{digest}/metadata/{mtype}", image_metadata, methods=["GET"]),
    Route("/images/{digest}/artifacts/{atype}", image_artifacts, methods=["GET"]),
]
