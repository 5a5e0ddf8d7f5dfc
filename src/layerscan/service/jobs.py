"""One image analysis as the service runs it: the pipeline, called as one function, and the
reports rendered from its result. `worker` and `batch` both come through here."""

from __future__ import annotations

import collections
import io

from ..analysis import Analysis
from ..config import Config
from ..pipeline import analyze  # the service's one import of the pipeline
from ..report import FORMATS
from ..scan import native_available

# What the service stores for every analyzed image: store kind -> report format.
STORED_REPORTS = {"anchore": "anchore", "layerscan": "json"}


def analyze_image(spec: str, config: Config) -> Analysis:
    """The pipeline on `spec`, with the native engine when it is built, without a progress bar."""
    return analyze(spec, config, engine="native" if native_available() else "reference", progress=False)


def render(analysis: Analysis, fmt: str) -> bytes:
    out = io.StringIO()
    FORMATS[fmt](analysis, out)
    return out.getvalue().encode()


def counts(analysis: Analysis) -> dict[str, object]:
    """What one analysis found, for a one-line summary: packages by type, files, secrets, layers."""
    return {
        "packages": dict(sorted(collections.Counter(p.type for p in analysis.packages).items())),
        "files": len(analysis.files),
        "secrets": sum(1 for s in analysis.secrets if s.kind == "secret"),
        "layers": len(analysis.layers),
    }
