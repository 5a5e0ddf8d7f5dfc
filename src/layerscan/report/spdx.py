"""SPDX 2.3 JSON: the image as the described package, every package with its CPEs and
purl (in Syft's order), and (beyond Syft) every file with SHA1, SHA256 and MD5 (named
"./path", as SPDX wants relative names), related to the package that owns it. Licenses
that are not valid SPDX expressions become LicenseRef-s with the original text, as Syft
does. Streamed like the other writers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TextIO

from license_expression import ExpressionError, Licensing, get_spdx_licensing

from .. import __version__
from ..analysis import Analysis
from ..catalog.model import Package
from .jsonstream import Arr, EncodedArr, Json, Obj, dump, string
from .sbom import TOOL, digested_files, document_uuid, timestamp

IMAGE_ID = "SPDXRef-Image"
NOASSERTION = "NOASSERTION"
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


def write(analysis: Analysis, out: TextIO) -> None:
    dump(document(analysis), out)
    out.write("\n")


def document(a: Analysis) -> Obj:
    digested = (path for path, hashed in zip(a.files.paths, a.files.hashed, strict=True) if hashed)
    file_ids = {path: i for i, path in enumerate(digested)}  # numbered as _files numbers them
    licenses = _Licenses()
    # Package licenses are resolved first so that the extracted LicenseRef texts are known.
    packages = [package(p, _package_id(i), licenses) for i, p in enumerate(a.packages)]
    return Obj(
        iter(
            [
                ("spdxVersion", "SPDX-2.3"),
                ("dataLicense", "CC0-1.0"),
                ("SPDXID", "SPDXRef-DOCUMENT"),
                ("name", a.source_name),
                (
                    "documentNamespace",
                    f"https://layerscan.dev/spdx/{_UNSAFE.sub('-', a.source_name).strip('-')}-{document_uuid(a)}",
                ),
                ("creationInfo", {"created": timestamp(), "creators": [f"Tool: {TOOL}-{__version__}"]}),
                ("packages", Arr(iter([_image(a), *packages]))),
                ("files", EncodedArr(_files(a))),
                ("hasExtractedLicensingInfos", licenses.extracted()),
                ("relationships", Arr(_relationships(a, file_ids))),
            ]
        )
    )


def _package_id(i: int) -> str:
    return f"SPDXRef-Package-{i}"


def _image(a: Analysis) -> dict[str, Json]:
    return {
        "SPDXID": IMAGE_ID,
        "name": a.source_name,
        "versionInfo": a.manifest_digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": a.manifest_digest.removeprefix("sha256:")}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    }


def package(p: Package, spdx_id: str, licenses: _Licenses) -> dict[str, Json]:
    out: dict[str, Json] = {
        "SPDXID": spdx_id,
        "name": p.name,
        "versionInfo": p.version or NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "sourceInfo": f"acquired package info from {p.type} at {p.location}",
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": licenses.expression(p.licenses),
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
    }
    refs: list[Json] = [
        {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": cpe} for cpe in p.cpes
    ]
    if p.purl:
        refs.append({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl})
    if refs:
        out["externalRefs"] = refs
    return out


def _files(a: Analysis) -> Iterator[str]:
    """Each digested file as JSON text; its SPDXID numbers it in path order, as file_ids does."""
    for i, (path, md5, sha1, sha256) in enumerate(digested_files(a)):
        yield (
            f'{{"fileName": {string("." + path)}, "SPDXID": "{_file_id(i)}", "checksums": ['
            f'{{"algorithm": "SHA1", "checksumValue": "{sha1}"}}, '
            f'{{"algorithm": "SHA256", "checksumValue": "{sha256}"}}, '
            f'{{"algorithm": "MD5", "checksumValue": "{md5}"}}], '
            f'"licenseConcluded": "{NOASSERTION}", "copyrightText": "{NOASSERTION}"}}'
        )


def _file_id(i: int) -> str:
    return f"SPDXRef-File-{i}"


def _relationships(a: Analysis, file_ids: dict[str, int]) -> Iterator[dict[str, str]]:
    yield {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": IMAGE_ID}
    for i, p in enumerate(a.packages):
        yield {"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS", "relatedSpdxElement": _package_id(i)}
        for f in p.files:
            if f in file_ids:
                # CONTAINS would need filesAnalyzed (a verification code over all files); Syft uses OTHER too.
                yield {
                    "spdxElementId": _package_id(i),
                    "relationshipType": "OTHER",
                    "relatedSpdxElement": _file_id(file_ids[f]),
                    "comment": "owns: the package's metadata lists this file",
                }


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()  # loads the SPDX license list once per process


class _Licenses:
    """Declared licenses as one SPDX expression; non-SPDX texts as LicenseRef-s."""

    def __init__(self) -> None:
        self._refs: dict[str, str] = {}  # text -> LicenseRef id

    def expression(self, licenses: tuple[str, ...]) -> str:
        parts = [self._one(text) for text in licenses if text.strip()]
        if not parts:
            return NOASSERTION
        return " AND ".join(f"({p})" if " " in p and len(parts) > 1 else p for p in parts)

    def _one(self, text: str) -> str:
        try:
            # parse(), not validate(): validate() itself raises on some syntax errors (30.4).
            parsed = _licensing().parse(text, validate=True, strict=True)
        except ExpressionError:
            parsed = None
        if parsed is not None:
            return str(parsed)
        if text not in self._refs:
            self._refs[text] = f"LicenseRef-{_UNSAFE.sub('-', text).strip('-') or 'unknown'}-{len(self._refs)}"
        return self._refs[text]

    def extracted(self) -> list[dict[str, str]]:
        return [{"licenseId": ref, "extractedText": text, "name": text} for text, ref in self._refs.items()]
