"""One image analysis as the service runs it: the pipeline, called as one function, and the
reports rendered from its result. `worker` and `batch` both come through here."""

from __future__ import annotations

import collections
import io

from ..analysis import Analysis
from ..config import Config
from ..pipeline import analyze  # the service's one import of the pipeline
from ..report import FORMATS
from . import job_credentials

# What the service stores for every analyzed image: store kind -> report format. The SBOMs are
# Harbor's scan reports (api/harbor.py); an Analysis is not stored, so they are rendered here.
STORED_REPORTS = {"anchore": "anchore", "layerscan": "json", "cyclonedx": "cyclonedx", "spdx": "spdx"}


def analyze_image(spec: str, config: Config, store: job_credentials.CredentialStore | None = None) -> Analysis:
    """The pipeline on `spec`, with the native engine, without a progress bar, and with the
    registry credentials a scan request handed over for it through `store` (job_credentials.py)."""
    if store is not None:
        config = job_credentials.config_for(store, spec, config)
    return analyze(spec, config, progress=False)


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
