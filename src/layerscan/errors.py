"""The typed errors a user can see, each with a one-line reason and an exit code.

`ExitCode` and `MEANING` are the one table of exit codes: every error class takes
its code from it, and the CLI's --help text (exit_codes_help) is made from it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    NOT_ANALYZED = 3
    CORRUPT_LAYER = 4
    DIGEST_MISMATCH = 5
    AUTH = 6
    SOURCE = 7
    INTERRUPTED = 130  # as a shell reports SIGINT
    PIPE_CLOSED = 141  # as a shell reports SIGPIPE


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.FINDINGS: "findings (secrets with --fail-on-secrets; corrupt entries dropped by 'cache verify')",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.NOT_ANALYZED: "the input could not be analyzed (4 to 7 when the reason is one of these)",
    ExitCode.CORRUPT_LAYER: "a corrupt layer",
    ExitCode.DIGEST_MISMATCH: "a digest mismatch",
    ExitCode.AUTH: "registry authentication refused",
    ExitCode.SOURCE: "an unreadable source or a failing registry",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.PIPE_CLOSED: "the output's reader went away (| head)",
}


def exit_codes_help() -> str:
    """The exit codes as one line of --help text."""
    return "exit codes: " + ", ".join(f"{int(code)} {meaning}" for code, meaning in MEANING.items()) + "."


class LayerscanError(Exception):
    """Base of every error layerscan reports to a user instead of a traceback."""

    exit_code: ExitCode = ExitCode.NOT_ANALYZED


class LayerError(LayerscanError):
    """A layer could not be scanned: corrupt compression, a malformed tar, or a limit exceeded.

    `layer` names the layer (digest or file), `offset` is the byte offset in the
    *uncompressed* tar stream where the problem was found (None when unknown).
    """

    exit_code = ExitCode.CORRUPT_LAYER

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

    exit_code = ExitCode.USAGE


class DigestMismatch(LayerscanError):
    """A blob's content does not match the digest it was addressed by."""

    exit_code = ExitCode.DIGEST_MISMATCH

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")


class ConfigError(LayerscanError):
    """config.yaml or analyzer_config.yaml cannot be read or has an invalid value (the message names the key)."""

    exit_code = ExitCode.USAGE


class SourceError(LayerscanError):
    """An image cannot be read from its source: unknown scheme, unreadable file, or an invalid or unsupported layout, manifest or config."""

    exit_code = ExitCode.SOURCE
