"""POST /imageimport: an Anchore export made elsewhere (`layerscan analyze --format anchore` on an
air-gapped host) stored as an analyzed image.

anchore-cli's `image import --infile export.json` posts the export's first element; the
whole one-element list is accepted too.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..exports import ExportError
from .context import context_of
from .errors import ApiError
from .images import images_response

MAX_EXPORT = 512 << 20  # the export of a very large image is a few hundred MB


async def import_image(request: Request) -> Response:
    ctx = context_of(request)
    body = await request.body()
    if len(body) > MAX_EXPORT:
        raise ApiError(413, f"the export is larger than {MAX_EXPORT} bytes")
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise ApiError(400, f"the request body is not JSON: {e}") from None
    # The store keeps exports as `analyze --format anchore` writes them: the one-element list.
    export = json.dumps([doc]).encode() if isinstance(doc, dict) else body
    try:
        record = await run_in_threadpool(ctx.store.import_analysis, export)
    except ExportError as e:
        raise ApiError(400, str(e)) from None
    return await run_in_threadpool(images_response, ctx, [record])


ROUTES = [Route("/imageimport", import_image, methods=["POST"])]
