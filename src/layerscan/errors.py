"""The typed errors a user can see, each with a one-line reason and an exit code."""

from __future__ import annotations


class LayerscanError(Exception):
    """Base of every error layerscan reports to a user instead of a traceback."""

    exit_code = 3


class LayerError(LayerscanError):
    """A layer could not be scanned: corrupt compression, a malformed tar, or a limit exceeded.

    `layer` names the layer (digest or file), `offset` is the byte offset in the
    *uncompressed* tar stream where the problem was found (None when unknown).
    """

    exit_code = 4

    def __init__(self, reason: str, layer: str = "", offset: int | None = None) -> None:
        self.reason = reason
        self.layer = layer
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        name = f"layer {layer}: " if layer else ""
        super().__init__(f"{name}{reason}{where}")


class CompressionError(LayerError):
    """The compressed stream is truncated or corrupt."""


class TarFormatError(LayerError):
    """The tar stream is malformed: bad checksum, bad number field, truncated entry, unsafe path."""


class LimitExceeded(LayerError):
    """A configured limit (total bytes, entries, path or extended-header size) was exceeded."""


class RuleError(LayerscanError):
    """A secret or content rule does not compile."""

    exit_code = 2


class DigestMismatch(LayerscanError):
    """A blob's content does not match the digest it was addressed by."""

    exit_code = 5

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")


class ConfigError(LayerscanError):
    """config.yaml or analyzer_config.yaml cannot be read or has an invalid value (the message names the key)."""

    exit_code = 2


class SourceError(LayerscanError):
    """An image cannot be read from its source: unknown scheme, unreadable file, or an invalid or unsupported layout, manifest or config."""

    exit_code = 7
