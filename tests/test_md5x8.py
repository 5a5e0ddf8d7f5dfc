"""ext/md5x8.c (MD5 of eight messages at once in AVX2 lanes) against OpenSSL's MD5: millions
of random messages of random lengths, every length around the block boundaries, and every
file of every corpus layer (through tests/md5x8_driver.c, built here with gcc)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import pyzstd

from conftest import ROOT, corpus_params, layer_blob
from test_native_scan import LAYERS

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the md5x8 driver")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("md5x8") / "md5x8_driver"
    crypto = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libcrypto"], check=True, text=True, capture_output=True
    )
    subprocess.run(
        ["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "ext"), "-o", str(exe)]
        + [str(ROOT / "tests" / "md5x8_driver.c"), str(ROOT / "ext" / "md5x8.c"), *crypto.stdout.split()],
        check=True,
    )
    if subprocess.run([str(exe), "digests"], input=b"", capture_output=True).returncode == 2:
        pytest.skip("this CPU has no AVX2")
    return exe


def digests(driver: Path, messages: list[bytes]) -> list[str]:
    frames = b"".join(struct.pack("<Q", len(m)) + m for m in messages)
    return (
        subprocess.run([str(driver), "digests"], input=frames, capture_output=True, check=True).stdout.decode().split()
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_random_messages_equal_openssl(driver: Path, seed: int) -> None:
    # a million messages per seed, in random batches of 1..40, lengths 0..70k, mostly near block boundaries
    out = subprocess.run([str(driver), "random", "1000000", str(seed)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "1000000 messages equal"


def test_every_length_up_to_three_blocks_and_a_half(driver: Path) -> None:
    data = bytes(range(256)) * 2
    messages = [data[n % 7 : n % 7 + n] for n in range(0, 225)]
    assert digests(driver, messages) == [hashlib.md5(m).hexdigest() for m in messages]


def test_messages_of_unequal_lengths_in_one_batch(driver: Path) -> None:
    # one long message with many short ones: lanes finish at different blocks and are refilled
    messages = [b"a" * 70_001] + [bytes([i]) * (i * 13 % 200) for i in range(100)] + [b"", b"b" * 64]
    assert digests(driver, messages) == [hashlib.md5(m).hexdigest() for m in messages]


def layer_files(path: Path) -> Iterator[bytes]:
    """The regular files of a gzip, zstd or uncompressed layer."""
    head = path.open("rb").read(4)
    raw: IO[bytes] = (
        gzip.open(path)
        if head.startswith(b"\x1f\x8b")
        else pyzstd.ZstdFile(path)  # type: ignore[assignment]
        if head == b"\x28\xb5\x2f\xfd"
        else path.open("rb")
    )
    with raw, tarfile.open(fileobj=raw, mode="r|") as tf:
        for m in tf:
            if m.isreg():
                f = tf.extractfile(m)
                assert f is not None
                yield f.read()


@pytest.mark.corpus
@pytest.mark.parametrize(
    "image,digest", corpus_params(lambda: [pytest.param(i, d, id=d[7:19]) for i, d in LAYERS], width=2)
)
def test_every_corpus_file_equals_openssl(driver: Path, image: str, digest: str) -> None:
    files = list(layer_files(layer_blob(image, digest)))
    assert files
    assert digests(driver, files) == [hashlib.md5(f).hexdigest() for f in files]
