# The types of layerscan._scan (ext/_scan.pyx), for mypy: the C scanner's Python face.
from array import array

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
    @property
    def always(self) -> tuple[int, ...]: ...

def compile_rules(patterns: tuple[str, ...]) -> Database: ...

class Marks:
    def __init__(self, markers: tuple[tuple[bytes, int, bytes], ...]) -> None: ...

class GlobMatcher:
    def __init__(self, program: bytes) -> None: ...
    def matches(self, path: bytes) -> bool: ...

class Result:
    @property
    def paths(self) -> list[str]: ...
    @property
    def types(self) -> bytearray: ...
    @property
    def modes(self) -> array[int]: ...
    @property
    def uids(self) -> array[int]: ...
    @property
    def gids(self) -> array[int]: ...
    @property
    def sizes(self) -> array[int]: ...
    @property
    def mtimes(self) -> array[int]: ...
    @property
    def unames(self) -> list[str]: ...
    @property
    def gnames(self) -> list[str]: ...
    @property
    def links(self) -> list[str | None]: ...
    @property
    def digests(self) -> bytearray: ...
    @property
    def xattrs(self) -> list[tuple[str, ...]]: ...
    @property
    def sparse(self) -> bytearray: ...
    @property
    def whiteouts(self) -> list[tuple[str, bool]]: ...
    @property
    def captures(self) -> list[tuple[int, int, bytes | None, int]]: ...
    @property
    def candidates(self) -> list[tuple[int, int, bytes]]: ...
    @property
    def marks(self) -> list[tuple[int, int, int, bytes]]: ...
    @property
    def outside(self) -> list[tuple[int, str, str, int]]: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def entries(self) -> int: ...
    @property
    def sparse_count(self) -> int: ...
    @property
    def input_sha256(self) -> bytes: ...
    @property
    def diff_sha256(self) -> bytes: ...
    @property
    def spill_fd(self) -> int: ...

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
