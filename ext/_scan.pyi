# The types of layerscan._scan (ext/_scan.pyx), for mypy: the C scanner's Python face.
from array import array
from typing import Final

MD5_LEN: int
SHA1_LEN: int
SHA256_LEN: int
DIGEST_LEN: int
ENTRY_KINDS: dict[str, str]  # entry code (one byte of the types column) -> kind name
WHITEOUT_PREFIX: str
WHITEOUT_META_PREFIX: str
OPAQUE_MARKER: str
OUTSIDE_ESCAPES: int
OUTSIDE_ABSOLUTE: int
OUTSIDE_LINK: int
CAPTURE_TOO_BIG: int
CAPTURE_SPILLED: int
MARK_MAX_HITS: int
MARK_HEAD: int
MARK_PROBE: int
COMPRESSIONS: dict[str, int]
ERR_COMPRESSION: int
ERR_TAR: int
ERR_LIMIT: int
ERR_NOMEM: int
ERR_INTERNAL: int

class ScanError(Exception):
    code: int
    reason: str
    offset: int
    def __init__(self, code: int, reason: str, offset: int) -> None: ...

def library_versions() -> dict[str, str]: ...

class Database:
    always: Final[tuple[int, ...]]

def compile_rules(patterns: tuple[str, ...]) -> Database: ...
def serialize_database(d: Database) -> bytes: ...
def deserialize_database(data: bytes, always: tuple[int, ...]) -> Database: ...

class Marks:
    def __init__(self, markers: tuple[tuple[bytes, int, bytes], ...]) -> None: ...

class GlobMatcher:
    def __init__(self, program: bytes) -> None: ...
    def matches(self, path: bytes) -> bool: ...

class Result:  # cdef readonly attributes: Final, so mypy refuses an assignment as Cython does
    paths: Final[list[str]]
    types: Final[bytearray]
    modes: Final[array[int]]
    uids: Final[array[int]]
    gids: Final[array[int]]
    sizes: Final[array[int]]
    mtimes: Final[array[int]]
    unames: Final[list[str]]
    gnames: Final[list[str]]
    links: Final[list[str | None]]
    digests: Final[bytearray]
    xattrs: Final[list[tuple[str, ...]]]
    sparse: Final[bytearray]
    whiteouts: Final[list[tuple[str, bool]]]
    captures: Final[list[tuple[int, int, bytes | None, int]]]
    candidates: Final[list[tuple[int, int, bytes]]]
    marks: Final[list[tuple[int, int, int, bytes]]]
    outside: Final[list[tuple[int, str, str, int]]]
    bytes_in: Final[int]
    bytes_out: Final[int]
    entries: Final[int]
    sparse_count: Final[int]
    input_sha256: Final[bytes]
    diff_sha256: Final[bytes]
    spill_fd: Final[int]

class Scanner:
    def __init__(
        self,
        *,
        compression: int,
        max_total_bytes: int,
        max_entries: int,
        max_path_bytes: int,
        max_ext_header_bytes: int,
        secret_max_file_size: int,
        secret_skip_binary: bool,
        hash_input: bool,
        diff_id: bool,
        rules: Database | None = None,
        n_rules: int = 0,
        capture: list[tuple[GlobMatcher, int]] | None = None,
        capture_spill_bytes: int = 0,
        spill_dir: str = "",
        marks: Marks | None = None,
        threads: int = 1,
    ) -> None: ...
    def feed(self, chunk: bytes | bytearray | memoryview) -> None: ...
    def finish(self) -> Result: ...
    def close(self) -> None: ...
