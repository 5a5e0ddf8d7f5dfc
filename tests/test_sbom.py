"""SBOM writers: CycloneDX 1.6 against the official JSON schema, SPDX 2.3 through the
official SPDX tools' validator, on the debian-apps image with every cataloger."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from conftest import answers
from layerscan.analysis import Analysis
from layerscan.catalog import catalog_image
from layerscan.report import FORMATS
from test_catalog_lang import debian_apps

pytestmark = pytest.mark.corpus  # every test here reads the shared corpus

SCHEMAS = Path(__file__).parent / "schemas"


@cache
def apps_analysis() -> Analysis:
    ans = answers("debian-apps")
    files = debian_apps()
    result = catalog_image(files)
    return Analysis(
        source_name="oci-dir:debian-apps",
        manifest_digest=ans["manifest_digest"],
        config_digest=ans["config_digest"],
        config=ans["config"],
        manifest={},
        repo_tags=(),
        repo_digests=(),
        layers=[],
        files=files,
        distro=result.distro,
        packages=result.packages,
        secrets=[],
        retrieved_files={},
        catalog_errors=result.errors,
        warnings=[],
        seconds=0.0,
        bytes_in=0,
        bytes_out=0,
    )


def render(fmt: str) -> dict:
    out = io.StringIO()
    FORMATS[fmt](apps_analysis(), out)
    return json.loads(out.getvalue())


def cyclonedx_validator() -> jsonschema.Draft7Validator:
    docs = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    base = "http://cyclonedx.org/schema/"
    # The 1.6 schema refers to its neighbours by their shipped file names.
    registry = Registry().with_resources(
        (base + name, Resource.from_contents(doc, default_specification=DRAFT7)) for name, doc in docs.items()
    )
    bom = docs["bom-1.6.SNAPSHOT.schema.json"]
    return jsonschema.Draft7Validator(bom, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_cyclonedx_validates_against_the_1_6_schema():
    doc = render("cyclonedx")
    errors = sorted(cyclonedx_validator().iter_errors(doc), key=str)
    assert errors == [], errors[:3]


def test_cyclonedx_packages_purls_and_file_hashes():
    doc = render("cyclonedx")
    a = apps_analysis()
    libs = [c for c in doc["components"] if c["type"] == "library"]
    assert len(libs) == len(a.packages) and all(c["purl"].startswith("pkg:") for c in libs)
    files = {c["name"]: {h["alg"]: h["content"] for h in c["hashes"]} for c in doc["components"] if c["type"] == "file"}
    rec = a.files.files["/app/server.js"].record
    assert files["/app/server.js"] == {"MD5": rec.md5, "SHA-1": rec.sha1, "SHA-256": rec.sha256}
    assert "/app/logs" not in files  # a symlink has no content of its own
    assert len({c["bom-ref"] for c in doc["components"]}) == len(doc["components"])


def test_cyclonedx_schema_rejects_a_broken_document():
    doc = render("cyclonedx")
    doc["components"][0]["type"] = "not-a-type"
    assert not cyclonedx_validator().is_valid(doc)


def test_spdx_validates_as_2_3():
    doc = render("spdx")
    document = JsonLikeDictParser().parse(doc)
    messages = validate_full_spdx_document(document, "SPDX-2.3")
    assert messages == [], messages[:3]


def test_spdx_packages_files_and_licenses():
    doc = render("spdx")
    a = apps_analysis()
    pkgs = [p for p in doc["packages"] if p["SPDXID"] != "SPDXRef-Image"]
    assert len(pkgs) == len(a.packages)
    assert all(p["externalRefs"][-1]["referenceLocator"].startswith("pkg:") for p in pkgs)
    f = next(x for x in doc["files"] if x["fileName"] == "./app/server.js")
    rec = a.files.files["/app/server.js"].record
    assert {c["algorithm"]: c["checksumValue"] for c in f["checksums"]} == {
        "SHA1": rec.sha1,
        "SHA256": rec.sha256,
        "MD5": rec.md5,
    }
    declared = {p["name"]: p["licenseDeclared"] for p in pkgs}
    assert declared["express"] == "MIT"
    refs = {x["licenseId"] for x in doc["hasExtractedLicensingInfos"]}
    assert all(r.startswith("LicenseRef-") for r in refs)
    owns = [r for r in doc["relationships"] if r["relationshipType"] == "OTHER"]
    assert owns and all(r["comment"].startswith("owns:") for r in owns)  # dpkg md5sums, python RECORD


def test_cpes_in_both_formats_as_syft_writes_them():
    a = apps_analysis()
    express = next(p for p in a.packages if p.name == "express")
    blinker = next(p for p in a.packages if p.name == "blinker")
    assert express.cpes == ("cpe:2.3:a:openjsf:express:4.22.3:*:*:*:*:node.js:*:*",) and len(blinker.cpes) > 1
    libs = {c["name"]: c for c in render("cyclonedx")["components"] if c["type"] == "library"}
    for p in (express, blinker):
        # the most specific CPE on the component, every other one a property
        assert libs[p.name]["cpe"] == p.cpes[0]
        assert [x["value"] for x in libs[p.name]["properties"] if x["name"] == "layerscan:cpe23"] == list(p.cpes[1:])
    spdx = {p["name"]: p for p in render("spdx")["packages"]}
    for p in (express, blinker):
        refs = spdx[p.name]["externalRefs"]
        assert refs[:-1] == [
            {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": c} for c in p.cpes
        ]
        assert refs[-1]["referenceType"] == "purl"
