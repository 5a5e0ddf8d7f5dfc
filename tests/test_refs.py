"""Image reference parsing: every form, Docker Hub normalisation, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerscan.refs import DOCKER_HUB, ImageRef, RefError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, expected",
    [
        ("debian", (DOCKER_HUB, "library/debian", "latest", None)),
        ("debian:12", (DOCKER_HUB, "library/debian", "12", None)),
        ("docker.io/debian", (DOCKER_HUB, "library/debian", "latest", None)),
        ("index.docker.io/library/debian:bookworm", (DOCKER_HUB, "library/debian", "bookworm", None)),
        ("anchore/engine:v1.0", (DOCKER_HUB, "anchore/engine", "v1.0", None)),
        ("localhost/repo", ("localhost", "repo", "latest", None)),
        ("localhost:5000/ns/repo:tag", ("localhost:5000", "ns/repo", "tag", None)),
        (f"quay.io/a/b/c@{DIGEST}", ("quay.io", "a/b/c", None, DIGEST)),
        (f"127.0.0.1:5000/ns/repo:tag@{DIGEST}", ("127.0.0.1:5000", "ns/repo", "tag", DIGEST)),
        (
            f"registry:Reg.Example.com:443/x_y/z-w__v:1.0_rc-1@{DIGEST}",
            ("reg.example.com:443", "x_y/z-w__v", "1.0_rc-1", DIGEST),
        ),
        ("docker://ghcr.io/org/app:sha-1", ("ghcr.io", "org/app", "sha-1", None)),
        ("[::1]:5000/repo:1", ("[::1]:5000", "repo", "1", None)),
    ],
)
def test_forms(text, expected):
    r = ImageRef.parse(text)
    assert (r.registry, r.repository, r.tag, r.digest) == expected


def test_display_forms():
    hub = ImageRef.parse("debian:12")
    assert hub.repo_tag() == "docker.io/library/debian:12"
    assert hub.repo_digest(DIGEST) == f"docker.io/library/debian@{DIGEST}"
    assert hub.reference == "12"
    pinned = ImageRef.parse(f"h:1/r:t@{DIGEST}")
    assert pinned.reference == DIGEST and str(pinned) == f"h:1/r:t@{DIGEST}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("registry:", "empty"),
        ("Debian", "lowercase"),
        ("a//b", "lowercase"),
        ("repo:", "not a valid tag"),
        ("repo:-bad", "not a valid tag"),
        ("repo@sha256:abc", "not a digest"),
        ("repo@sha256:" + "AB" * 32, "64 lowercase hex"),
        ("host:port/x", "not a valid registry"),
        ("localhost:5000/", "no repository"),
        ("a/" + "b" * 300, "longer than 255"),
        ("a..b", "lowercase"),
    ],
)
def test_errors(text, message):
    with pytest.raises(RefError, match=message):
        ImageRef.parse(text)


_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:\.|_|__|-{1,2})[a-z0-9]{1,6}){0,2}", fullmatch=True)
_host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9](?:\.[a-z0-9]{1,5}){1,2}", fullmatch=True),
    st.just("localhost"),
    st.builds(lambda p: f"127.0.0.1:{p}", st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@given(
    host=_host,
    path=st.lists(_component, min_size=1, max_size=4),
    tag=st.none() | _tag,
    digest=st.none() | _digest,
    prefix=st.sampled_from(["", "registry:", "docker://"]),
)
def test_round_trip(host, path, tag, digest, prefix):
    text = f"{prefix}{host}/{'/'.join(path)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    r = ImageRef.parse(text)
    assert r.registry == host
    assert r.repository == "/".join(path)
    assert r.digest == digest
    assert r.tag == (tag or (None if digest else "latest"))
    assert ImageRef.parse(str(r)) == r


@given(st.text(max_size=60))
def test_any_text_parses_or_is_a_ref_error(text):
    try:
        ImageRef.parse(text)
    except RefError:
        pass
