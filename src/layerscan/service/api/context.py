"""What every route of the API works with: the config, the store, the in-process worker (if any),
and the stored Anchore exports, parsed once per analysis."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import threading
from typing import Any

from starlette.requests import Request

from ...config import Config
from ..store import ANALYZED, ImageRecord, Store
from ..worker import AnalyzerWorker
from .content import repo_name, summary_metadata
from .errors import ApiError

_EXPORTS_KEPT = 8  # parsed exports kept in memory (one is a few MB for a large image)


@dataclasses.dataclass
class ApiContext:
    config: Config
    store: Store
    worker: AnalyzerWorker | None = None
    started_at: datetime.datetime = dataclasses.field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    _exports: collections.OrderedDict[tuple[str, str], Any] = dataclasses.field(default_factory=collections.OrderedDict)
    _metadata: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def image(self, digest: str) -> ImageRecord:
        record = self.store.get_image(digest)
        if record is None:
            raise ApiError(404, f"image {digest} not found")
        return record

    def analyzed(self, record: ImageRecord) -> Any:
        """The parsed Anchore export of an analyzed image; 404 as Anchore's while it is not."""
        if record.analysis_status != ANALYZED:
            raise ApiError(404, f"image is not analyzed - analysis_status: {record.analysis_status}")
        key = (record.image_digest, str(record.analyzed_at))
        with self._lock:
            if key in self._exports:
                self._exports.move_to_end(key)
                return self._exports[key]
        raw = self.store.get_report(record.image_digest, "anchore")
        if raw is None:
            raise ApiError(404, f"image {record.image_digest} is analyzed but its Anchore report is not stored")
        export = json.loads(raw)
        with self._lock:
            self._exports[key] = export
            while len(self._exports) > _EXPORTS_KEPT:
                self._exports.popitem(last=False)
        return export

    def metadata(self, record: ImageRecord) -> dict[str, Any] | None:
        """image_content.metadata of an analyzed image (kept: lists show it for every image)."""
        if record.analysis_status != ANALYZED:
            return None
        key = (record.image_digest, str(record.analyzed_at))
        with self._lock:
            found = self._metadata.get(key)
        if found is None:
            found = summary_metadata(self.analyzed(record))
            with self._lock:
                self._metadata[key] = found
        return found

    def untagged_name(self, record: ImageRecord) -> str | None:
        """For an image with no tag (an import of an untagged export): the repository its export names."""
        if record.fulltags or record.analysis_status != ANALYZED:
            return None
        return repo_name(self.analyzed(record))


def context_of(request: Request) -> ApiContext:
    ctx = request.app.state.context
    assert isinstance(ctx, ApiContext)
    return ctx
