"""CycloneDX 1.6 JSON: the image as the metadata component, every package as a library
component with its purl and CPEs, and (beyond Syft) every file with MD5, SHA-1 and SHA-256.
Streamed: the component list is written as it is produced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TextIO

from .. import __version__
from ..analysis import Analysis
from ..catalog.metadata import JavaMetadata
from ..catalog.model import Package
from .jsonstream import EncodedArr, Json, Obj, dump, string
from .sbom import TOOL, digested_files, document_uuid, timestamp

IMAGE_REF = "image"


def write(analysis: Analysis, out: TextIO) -> None:
    dump(document(analysis), out)
    out.write("\n")


def document(a: Analysis) -> Obj:
    return Obj(
        iter(
            [
                ("$schema", "http://cyclonedx.org/schema/bom-1.6.schema.json"),
                ("bomFormat", "CycloneDX"),
                ("specVersion", "1.6"),
                ("serialNumber", f"urn:uuid:{document_uuid(a)}"),
                ("version", 1),
                ("metadata", _metadata(a)),
                ("components", EncodedArr(_components(a))),
                ("dependencies", [{"ref": IMAGE_REF, "dependsOn": [_ref(i) for i in range(len(a.packages))]}]),
            ]
        )
    )


def _metadata(a: Analysis) -> dict[str, Json]:
    properties = [("layerscan:image:config-digest", a.config_digest)]
    properties += [("layerscan:image:repo-tag", t) for t in a.repo_tags]
    properties += [("layerscan:image:layer", layer.descriptor.digest) for layer in a.layers]
    if a.distro is not None:
        properties.append(("layerscan:distro", f"{a.distro.id} {a.distro.version_id}".strip()))
    image: dict[str, Json] = {
        "bom-ref": IMAGE_REF,
        "type": "container",
        "name": a.source_name,
        "version": a.manifest_digest,
        "hashes": [{"alg": "SHA-256", "content": a.manifest_digest.removeprefix("sha256:")}],
        "properties": [{"name": name, "value": value} for name, value in properties],
    }
    return {
        "timestamp": timestamp(),
        "tools": {"components": [{"type": "application", "name": TOOL, "version": __version__}]},
        "component": image,
    }


def _ref(i: int) -> str:
    return f"pkg-{i}"


def _components(a: Analysis) -> Iterator[str]:
    """Each component as JSON text: the packages, then a component per digested file."""
    for i, p in enumerate(a.packages):
        yield json.dumps(component(p, _ref(i)))
    for path, md5, sha1, sha256 in digested_files(a):
        name = string(path)
        yield (
            f'{{"bom-ref": {string("file:" + path)}, "type": "file", "name": {name}, "hashes": ['
            f'{{"alg": "MD5", "content": "{md5}"}}, {{"alg": "SHA-1", "content": "{sha1}"}}, '
            f'{{"alg": "SHA-256", "content": "{sha256}"}}]}}'
        )


def component(p: Package, ref: str) -> dict[str, Json]:
    c: dict[str, Json] = {"bom-ref": ref, "type": "library", "name": p.name}
    if isinstance(p.metadata, JavaMetadata) and p.metadata.group_id:
        c["group"] = p.metadata.group_id
    if p.version:
        c["version"] = p.version
    if p.licenses:
        c["licenses"] = [{"license": {"name": lic}} for lic in p.licenses]
    if p.cpes:
        c["cpe"] = p.cpes[0]  # the most specific; the others are properties, as Syft writes them
    if p.purl:
        c["purl"] = p.purl
    props = [("layerscan:package:type", p.type), ("layerscan:location:0:path", p.location)]
    props += [("layerscan:cpe23", cpe) for cpe in p.cpes[1:]]
    props += [
        (f"layerscan:package:{k}", v)
        for k, v in (("source", p.source), ("source-version", p.source_version), ("arch", p.arch))
        if v
    ]
    c["properties"] = [{"name": k, "value": v} for k, v in props]
    return c
