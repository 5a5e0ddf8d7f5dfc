"""The Anchore Engine image export (`anchore-format.md` §2), streamed to its file.

It loads wherever an Anchore Engine analysis loads (the policy engine's ImageLoader,
the API content formatters, `anchore-cli image import`). Where Anchore has a quirk
that consumers see, it is kept and marked "Anchore quirk"; where we do better, the
difference is marked "beyond Anchore".

This package owns the whole export: the document's order here, and one module per
part: image_report (manifest, config, history), files (file analyzers),
os_packages and packages (package_list, pkgfilemeta), distro (analyzer_meta),
regexp_matches (secret and content search); kvfile is the element nesting they share.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TextIO

from ...analysis import Analysis
from ...filetree import ImageFiles
from ..jsonstream import Arr, Aside, Json, Obj, dump, string
from .distro import analyzer_meta
from .files import file_checksums, file_list, file_suids
from .image_report import docker_history, image_id_of, image_report_of, layers_to_dockerfile
from .kvfile import element, encoded_base
from .os_packages import pkgfilemeta
from .packages import package_list
from .regexp_matches import regexp_matches


def write(analysis: Analysis, out: TextIO) -> None:
    dump(document(analysis), out)
    out.write("\n")


def document(a: Analysis) -> Arr:
    imagedata = Obj(
        [
            ("analyzer_manifest", {}),
            ("analysis_report", Obj(_analysis_report(a))),
            ("image_report", image_report_of(a)),
        ]
    )
    return Arr([Obj([("image", Obj([("imageId", image_id_of(a)), ("imagedata", imagedata)]))])])


def _file_analyzers(files: ImageFiles) -> Iterator[tuple[str, Json]]:
    yield "file_list", file_list(files)
    yield "file_checksums", file_checksums(files)


def _analysis_report(a: Analysis) -> Iterator[tuple[str, Json] | Aside]:
    """The analyzers in the engine's order; an analyzer with nothing to say is left out, as Anchore does."""
    yield "analyzer_meta", element("analyzer_meta", analyzer_meta(a.distro).items())
    history_map = json.dumps(layers_to_dockerfile(docker_history(a.manifest, a.config)))
    yield "layer_info", element("layers_to_dockerfile", [("dockerfile_to_layer_map", history_map)])
    yield Aside(_file_analyzers(a.files))  # a row per file: the biggest part, by a second process where it can
    file_meta = pkgfilemeta(a.packages)
    if file_meta:
        members = (f"{string(path)}: {string(text)}" for path, text in sorted(file_meta.items()))
        yield "file_package_verify", Obj([("distro.pkgfilemeta", encoded_base(members))])
    suids = file_suids(a.files)
    if suids is not None:
        yield "file_suids", suids
    if a.retrieved_files:
        contents = [(path, base64.b64encode(data).decode("ascii")) for path, data in a.retrieved_files.items()]
        yield "retrieve_files", element("file_content.all", contents)
    for analyzer, kind in (("secret_search", "secret"), ("content_search", "content")):
        matches = regexp_matches(a.secrets, a.rules, kind)
        if matches:
            yield analyzer, element("regexp_matches.all", matches.items())
    yield "package_list", package_list(a.packages, a.distro)
