"""config.yaml (Anchore's keys and ours) -> a frozen Config.

Defaults here are the whole truth of what layerscan does when no file is given.

`load_config(path)` reads Anchore's config.yaml as it is (top-level `tmp_dir`, the
analyzer section under `services.analyzer` or `analyzer`), the sections of Anchore's
analyzer_config.yaml (`secret_search`, `content_search`, `retrieve_files`, inline or from
the file named by `analyzer_config`, or found in Anchore's `service_dir`), and
layerscan's own keys. Every key is checked: an unknown one gets a warning naming it,
an invalid value a ConfigError naming it. See examples/config.yaml.

Rules: Anchore's `secret_search.regexp_match` replaces Anchore's five default rules, as
in Anchore; layerscan's built-in rules stay on beside them unless
`secret_search.builtin_rules: false`. `secret_rules` adds rules in layerscan's form.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, RuleError
from .scan.model import Limits
from .scan.rules import Rule, anchore_default_rules, builtin_rules, check_unique, default_rules, parse_anchore_rule

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetrieveFiles:
    file_list: tuple[str, ...] = ("/etc/passwd",)
    max_file_size_kb: int = 1000


@dataclasses.dataclass(frozen=True)
class Registry:
    """Per-registry settings, keyed by host[:port]."""

    insecure: bool = False  # plain HTTP, or HTTPS without verification
    ca_cert: str | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)  # never in a log line
    # A registry access token used as is (`Authorization: Bearer`), as Harbor hands one to a scanner
    # for one job; never read from a config file.
    token: str | None = dataclasses.field(default=None, repr=False)


def default_service_dir() -> str:
    """`layerscan` under the user's data directory (XDG_DATA_HOME, else ~/.local/share)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "layerscan")


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """The analyzer service (`serve`, `worker`, `batch`); Anchore's keys where Anchore has them.

    service_dir, credentials.database.db_connect, default_admin_password, keys.secret,
    credentials.users.<name>.password, services.apiext.{listen,port,require_auth}, and
    services.analyzer.enabled, and layerscan's services.analyzer.{lease_seconds,max_attempts}.
    No analyses run where `enabled` is false or services.analyzer.max_threads is 0."""

    service_dir: str = dataclasses.field(default_factory=default_service_dir)
    db_connect: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    default_admin_password: str | None = dataclasses.field(default=None, repr=False)
    users: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # name -> password
    apiext_listen: str = "0.0.0.0"
    apiext_port: int = 8228
    apiext_require_auth: bool = True
    enabled: bool = True  # services.analyzer.enabled
    lease_seconds: int = 60  # a job whose worker sent no heartbeat for this long goes back to the queue
    max_attempts: int = 3  # failed or abandoned analyses of one image before it is analysis_failed
    # queue: redis://… sends jobs through Celery with this broker (none: the store is polled)
    queue_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    # keys.secret, Anchore's secret that all its services share: here the key that seals registry
    # credentials a scan request hands over, for whichever worker takes the job
    keys_secret: str | None = dataclasses.field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        return self.db_connect or f"sqlite:///{os.path.join(os.path.abspath(self.service_dir), 'layerscan.db')}"


@dataclasses.dataclass(frozen=True)
class Config:
    tmp_dir: str = dataclasses.field(default_factory=tempfile.gettempdir)
    # services.analyzer (Anchore's names). require_auth, cycle_timer_seconds, listen and
    # port are the analyzer service's (src/layerscan/service/).
    require_auth: bool = True
    cycle_timer_seconds: int = 1
    max_threads: int = 4
    listen: str = "0.0.0.0"
    port: int = 8084
    layer_cache_enable: bool = False
    layer_cache_max_gigabytes: int = 4
    enable_owned_package_filtering: bool = True
    # secret_search / content_search / retrieve_files (Anchore's analyzer_config.yaml)
    secret_rules: tuple[Rule, ...] = dataclasses.field(default_factory=lambda: tuple(default_rules()))
    secret_max_file_size: int = 10_000_000
    secret_skip_binary: bool = True
    content_rules: tuple[Rule, ...] = ()
    # true: report every match of layerscan's own rules, the ones its allow rules call examples too
    secrets_all: bool = False
    retrieve_files: RetrieveFiles = RetrieveFiles()
    # layerscan's own
    limits: Limits = Limits()
    capture_max_bytes: int = 64 << 20  # per captured file, for globs without their own limit (rpm databases, jars)
    # threads that may work on one layer at once (hashing file data); None: the cores this process may use
    scan_threads: int | None = None
    registries: dict[str, Registry] = dataclasses.field(default_factory=dict)
    ca_cert: str | None = None
    insecure_registries: tuple[str, ...] = ()
    fetch_foreign_layers: bool = True  # from the layer's urls, as Anchore does; false: skip them, with a warning
    platform: str | None = None
    # the result cache (store/results): per-layer scan results and image analyses, local or in Redis
    result_cache_enable: bool = True
    result_cache_max_gigabytes: float = 2.0  # decimal GB, local directory or Redis alike
    result_cache_url: str | None = dataclasses.field(default=None, repr=False)  # redis://…; may hold a password
    result_cache_ttl_days: int = 30  # Redis only: an entry not read for this long expires
    service: ServiceSettings = dataclasses.field(default_factory=ServiceSettings)


# Anchore keys that mean something to other Anchore services, or to features layerscan does
# not have; accepted quietly so that an Anchore config.yaml loads without a wall of warnings.
_ANCHORE_TOP_IGNORED = frozenset(
    {
        "log_level",
        "logging",
        "host_id",
        "internal_ssl_verify",
        "auto_restart_services",
        "allow_awsecr_iam_auto",
        "skopeo_global_timeout",
        "max_compressed_image_size_mb",
        "image_analyze_timeout_seconds",
        "cleanup_images",
        "default_admin_email",
        "webhooks",
        "metrics",
        "user_authentication",
        "policy_bundles",
        "feeds",
        "global_client_read_timeout",
        "global_client_connect_timeout",
        "server_request_timeout_seconds",
        "image_content_types",
        "image_metadata_types",
        "docker_conn",
        "docker_conn_timeout",
        "license_file",
        "hints_enabled",
        "malware",
    }
)
_ANALYZER_IGNORED = frozenset(
    {
        "enabled",
        "analyzer_driver",  # layerscan has one way to read an image
        "endpoint_hostname",
        "keep_image_analysis_tmpfiles",  # layerscan writes no per-image temp files
        "external_port",
        "external_tls",
        "max_request_threads",
        "cycle_timers",
        "ssl_enable",
        "ssl_cert",
        "ssl_key",
        "ssl_chain",
        "authorization_handler",
        "authorization_handler_config",
    }
)
_ANALYZER_CONFIG_SECTIONS = ("secret_search", "content_search", "retrieve_files", "malware")
# Variables Anchore substitutes (ANCHORE_*), and ours.
_ENV_NAME = re.compile(r"\$\{((?:ANCHORE|LAYERSCAN)[A-Za-z0-9_]*)\}")
_UNSET = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def load_config(path: str | None) -> Config:
    """The Config a file describes; defaults for every key it does not set. None: all defaults."""
    if path is None:
        return Config()
    doc = _load_yaml(Path(path))
    base = Path(path).resolve().parent
    top = _Section(doc, "", base)
    analyzer_doc = _analyzer_config_doc(top, base)
    for name in _ANALYZER_CONFIG_SECTIONS:
        if name in doc:
            analyzer_doc[name] = doc[name]  # inline sections override the file's
    kw: dict[str, Any] = {}
    kw.update(_top_level(top))
    kw.update(_analyzer_section(top))
    kw["service"] = _service_section(top)
    kw.update(_analyzer_config(_Section(analyzer_doc, "", base), top))
    top.finish()
    return Config(**kw)


# ---------------------------------------------------------------------------- reading files


def substitute_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `${ANCHORE_…}` and `${LAYERSCAN_…}` with their values, in the text, before YAML parses it.

    As Anchore does: ANCHORE_ENV_FILE (lines `NAME=value`, quotes stripped) supplies values
    too, the environment wins, and a variable that is set nowhere stays as written.
    """
    env = dict(os.environ if env is None else env)
    values: dict[str, str] = {}
    env_file = env.get("ANCHORE_ENV_FILE")
    if env_file:
        try:
            lines = Path(env_file).read_text().splitlines()
        except OSError as e:
            raise ConfigError(f"ANCHORE_ENV_FILE {env_file}: {e.strerror}") from None
        for line in lines:
            name, sep, value = line.partition("=")
            if sep and name.strip():
                values[name.strip()] = value.strip().strip("\"'")
    values.update(env)
    return _ENV_NAME.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _load_yaml(path: Path) -> dict:
    import yaml  # only where a config file is read: PyYAML's import is ~8% of a one-shot run's start-up

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not UTF-8 text") from None
    try:
        doc = yaml.safe_load(substitute_env(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config {path}:{where} not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of keys, not {type(doc).__name__}")
    return doc


def _analyzer_config_doc(top: _Section, base: Path) -> dict:
    """The analyzer_config.yaml named by `analyzer_config`, or Anchore's `<service_dir>/analyzer_config.yaml`."""
    named = top.get("analyzer_config", _file_in(base), None)
    if named is not None:
        return _only_sections(_load_yaml(Path(named)), named)
    service_dir = top.raw.get("service_dir")
    if isinstance(service_dir, str):
        candidate = base / service_dir / "analyzer_config.yaml"
        if candidate.is_file():
            log.info("reading %s (Anchore's service_dir)", candidate)
            return _only_sections(_load_yaml(candidate), str(candidate))
    return {}


def _only_sections(doc: dict, where: str) -> dict:
    for key in doc:
        if key not in _ANALYZER_CONFIG_SECTIONS:
            log.warning("config %s: unknown key %r (ignored)", where, key)
    return {k: v for k, v in doc.items() if k in _ANALYZER_CONFIG_SECTIONS}


# ---------------------------------------------------------------------------- sections


def _top_level(top: _Section) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    parsers: tuple[tuple[str, Callable[[Any, str], Any]], ...] = (
        ("tmp_dir", _nonempty_str),
        ("secret_max_file_size", _nonneg_int),
        ("secret_skip_binary", _bool),
        ("secrets_all", _bool),
        ("capture_max_bytes", _nonneg_int),
        ("scan_threads", _pos_int),
        ("ca_cert", _file_in(top.base)),
        ("insecure_registries", _str_tuple),
        ("fetch_foreign_layers", _bool),
        ("platform", _platform),
        ("result_cache_enable", _bool),
        ("result_cache_max_gigabytes", _pos_number),
        ("result_cache_url", _redis_url),
        ("result_cache_ttl_days", _pos_int),
    )
    for name, parse in parsers:
        top.put(kw, name, parse)
    limits = top.section("limits")
    if limits is not None:
        lkw: dict[str, Any] = {}
        for f in dataclasses.fields(Limits):
            limits.put(lkw, f.name, _pos_int)
        limits.finish()
        kw["limits"] = Limits(**lkw)
    registries = top.section("registries")
    if registries is not None:
        kw["registries"] = {host: _registry(registries.section(host)) for host in list(registries.raw)}
        registries.finish()
    top.ignore(_ANCHORE_TOP_IGNORED | {"services", "analyzer", "secret_rules", *_ANALYZER_CONFIG_SECTIONS})
    return kw


def _pos_number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ConfigError(f"config {key}: expected a number, got {v!r}")
    try:
        n = float(v)
    except ValueError:
        raise ConfigError(f"config {key}: expected a number, got {v!r}") from None
    if not n > 0 or n == float("inf"):
        raise ConfigError(f"config {key}: must be a number above 0, got {v!r}")
    return n


def _redis_url(v: Any, key: str) -> str:
    url = _nonempty_str(v, key)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        # Not the URL itself: it may hold a password.
        raise ConfigError(f"config {key}: expected a redis://, rediss:// or unix:// URL, got scheme {scheme!r}")
    return url


def _registry(sec: _Section | None) -> Registry:
    if sec is None:
        return Registry()
    kw: dict[str, Any] = {}
    sec.put(kw, "insecure", _bool)
    sec.put(kw, "ca_cert", _file_in(sec.base))
    sec.put(kw, "username", _nonempty_str)
    sec.put(kw, "password", _nonempty_str)
    password_file = sec.get("password_file", _file_in(sec.base), None)
    if password_file is not None:
        if "password" in kw:
            raise ConfigError(f"{sec.where}: set password or password_file, not both")
        kw["password"] = Path(password_file).read_text().strip()
    if "password" in kw and "username" not in kw:
        raise ConfigError(f"{sec.where}.password: needs a username beside it")
    sec.finish()
    return Registry(**kw)


def _analyzer_section(top: _Section) -> dict[str, Any]:
    services = top.section("services")
    anchore = services.section("analyzer") if services is not None else None
    if services is not None:
        services.ignore(set(services.raw) - {"analyzer"})  # the other services: not ours, or read by _service_section
        services.finish()
    ours = top.section("analyzer")
    if anchore is not None and ours is not None:
        raise ConfigError("config: the analyzer section is given twice, as services.analyzer and as analyzer")
    sec = anchore or ours
    kw: dict[str, Any] = {}
    if sec is None:
        return kw
    sec.put(kw, "require_auth", _bool)
    sec.put(kw, "cycle_timer_seconds", _nonneg_int)
    sec.put(kw, "max_threads", _nonneg_int)  # 0: no analyses (the service's API only)
    sec.put(kw, "listen", _nonempty_str)
    sec.put(kw, "port", _port_or_off)
    if sec.get("enable_hints", _bool, False):
        log.warning(
            "config %s: layerscan does not read an image's anchore_hints.json; ignored", sec.key("enable_hints")
        )
    sec.put(kw, "layer_cache_enable", _bool)
    # Anchore parses it with int(); the 1 GB floor is applied (with a warning) by the cache.
    sec.put(kw, "layer_cache_max_gigabytes", _nonneg_int)
    sec.put(kw, "enable_owned_package_filtering", _bool)
    sec.ignore(_ANALYZER_IGNORED | {"lease_seconds", "max_attempts"})  # read by _service_section
    sec.finish()
    return kw


def _service_section(top: _Section) -> ServiceSettings:
    """The service's keys, wherever Anchore keeps them (see ServiceSettings)."""
    kw: dict[str, Any] = {}
    top.put(kw, "service_dir", _nonempty_str)
    top.put(kw, "default_admin_password", _nonempty_str)
    if top.raw.get("queue") is not None:  # Celery's broker (Anchore has no such key)
        kw["queue_url"] = top.get("queue", _redis_url)
    keys = top.section("keys")
    if keys is not None:
        if keys.raw.get("secret") is not None:
            kw["keys_secret"] = keys.get("secret", _nonempty_str)
        keys.ignore({"public_key_path", "private_key_path"})  # Anchore's JWT signing keys
        keys.finish()
    credentials = top.section("credentials")
    if credentials is not None:
        database = credentials.section("database")
        if database is not None:
            database.put(kw, "db_connect", _nonempty_str)
            database.ignore(_DATABASE_IGNORED)
            database.finish()
        users = credentials.section("users")
        if users is not None:
            kw["users"] = {str(name): _user_password(users.section(str(name))) for name in list(users.raw)}
            users.finish()
        credentials.finish()
    raw_services = top.raw.get("services")
    services = _Section(raw_services, "services", top.base) if isinstance(raw_services, dict) else None
    apiext = services.section("apiext") if services is not None else None
    if apiext is not None:
        api: dict[str, Any] = {}
        apiext.put(api, "listen", _nonempty_str)
        apiext.put(api, "port", _port)
        apiext.put(api, "require_auth", _bool)
        kw.update({f"apiext_{name}": value for name, value in api.items()})
        apiext.ignore(_ANALYZER_IGNORED)  # the same service keys as the analyzer's
        apiext.finish()
    analyzer = (services.section("analyzer") if services is not None else None) or top.section("analyzer")
    if analyzer is not None:  # the rest of it is read (and checked) by _analyzer_section
        analyzer.put(kw, "enabled", _bool)
        analyzer.put(kw, "lease_seconds", _pos_int)
        analyzer.put(kw, "max_attempts", _pos_int)
    return ServiceSettings(**kw)


def _port_or_off(v: Any, key: str) -> int:
    """A TCP port, or 0: the worker serves no status port."""
    return 0 if _int(v, key) == 0 else _port(v, key)


def _user_password(sec: _Section | None) -> str:
    if sec is None:
        raise ConfigError("config credentials.users: each user needs a password")
    password = sec.get("password", _nonempty_str)
    sec.ignore({"email"})
    sec.finish()
    return password


# Anchore's other database and API settings: SQLAlchemy pool tuning and TLS termination layerscan leaves to defaults.
_DATABASE_IGNORED = frozenset(
    {"db_connect_args", "db_pool_size", "db_pool_max_overflow", "db_engine_args", "db_user", "db_pass", "db_name"}
)


def _analyzer_config(doc: _Section, top: _Section) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    builtin, anchore, secret_size = True, anchore_default_rules(), None
    secret = doc.section("secret_search")
    if secret is not None:
        builtin = secret.get("builtin_rules", _bool, True)
        secret_size = _match_params(secret)
        anchore = secret.get("regexp_match", _rules("secret"), anchore)
        secret.finish()
    content_rules: list[Rule] = []
    content_size = None
    content = doc.section("content_search")
    if content is not None:
        content_size = _match_params(content)
        content_rules = content.get("regexp_match", _rules("content"), [])
        content.finish()
    sizes = [s for s in (secret_size, content_size) if s is not None]
    if len(set(sizes)) > 1:
        log.warning(
            "secret_search and content_search set different MAXFILESIZE; layerscan has one limit "
            "for both and uses the larger, %d",
            max(sizes),
        )
    if sizes and "secret_max_file_size" not in top.raw:
        kw["secret_max_file_size"] = max(sizes)
    own: list[Rule] = top.get("secret_rules", _own_rules, [])
    secret_rules = (builtin_rules() if builtin else []) + anchore + [r for r in own if r.kind == "secret"]
    content_rules += [r for r in own if r.kind == "content"]
    for where, rules in (("secret rules", secret_rules), ("content rules", content_rules)):
        try:
            check_unique(rules)
        except RuleError as e:
            raise ConfigError(f"config {where}: {e}") from None
    kw["secret_rules"] = tuple(secret_rules)
    kw["content_rules"] = tuple(content_rules)
    retrieve = doc.section("retrieve_files")
    if retrieve is not None:
        rkw: dict[str, Any] = {}
        retrieve.put(rkw, "file_list", _abs_paths)
        retrieve.put(rkw, "max_file_size_kb", _nonneg_int)
        retrieve.finish()
        kw["retrieve_files"] = RetrieveFiles(**rkw)
    malware = doc.section("malware")
    if malware is not None:
        clamav = malware.section("clamav")
        if clamav is not None and clamav.get("enabled", _bool, False):
            log.warning("config malware.clamav.enabled: layerscan does not run ClamAV; ignored")
        malware.ignore(set(malware.raw))
        if clamav is not None:
            clamav.ignore(set(clamav.raw))
    return kw


def _match_params(sec: _Section) -> int | None:
    """Anchore's `match_params: [MAXFILESIZE=n, STOREONMATCH=y|n]`; returns MAXFILESIZE (bytes)."""
    params: tuple[str, ...] = sec.get("match_params", _str_tuple, ())
    size = None
    for p in params:
        name, _, value = p.partition("=")
        key = f"{sec.where}.match_params {p!r}"
        if name == "MAXFILESIZE":
            size = _nonneg_int(value, key)
        elif name == "STOREONMATCH":
            if value.lower() in ("y", "yes", "true"):
                log.warning("config %s: layerscan never stores a matched file's content; ignored", key)
        else:
            log.warning("config %s: unknown match parameter (ignored)", key)
    return size


# ---------------------------------------------------------------------------- value parsers
# Each takes (value, key) and returns the typed value or raises ConfigError naming the key.


def _bool(v: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return v.strip().lower() in ("true", "yes", "on", "1")  # substituted env values arrive as strings
    raise ConfigError(f"config {key}: expected true or false, got {v!r}")


def _int(v: Any, key: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)  # as Anchore's int()
    raise ConfigError(f"config {key}: expected an integer, got {v!r}")


def _nonneg_int(v: Any, key: str) -> int:
    n = _int(v, key)
    if n < 0:
        raise ConfigError(f"config {key}: must not be negative, got {n}")
    return n


def _pos_int(v: Any, key: str) -> int:
    n = _int(v, key)
    if n < 1:
        raise ConfigError(f"config {key}: must be at least 1, got {n}")
    return n


def _port(v: Any, key: str) -> int:
    n = _int(v, key)
    if not 1 <= n <= 65535:
        raise ConfigError(f"config {key}: not a TCP port: {n}")
    return n


def _nonempty_str(v: Any, key: str) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)  # an unquoted hostname or password that YAML read as a number
    if not isinstance(v, str) or not v:
        raise ConfigError(f"config {key}: expected a non-empty string, got {type(v).__name__}")
    return v


def _str_tuple(v: Any, key: str) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ConfigError(f"config {key}: expected a list, got {type(v).__name__}")
    return tuple(_nonempty_str(x, f"{key}[{i}]") for i, x in enumerate(v))


def _abs_paths(v: Any, key: str) -> tuple[str, ...]:
    paths = _str_tuple(v, key)
    for i, p in enumerate(paths):
        if not p.startswith("/"):
            raise ConfigError(f"config {key}[{i}]: {p!r} is not an absolute path inside the image")
    return paths


def _file_in(base: Path, must_exist: bool = True) -> Callable[[Any, str], str]:
    """A parser for a file path, relative to the directory of the config file that names it."""

    def parse(v: Any, key: str) -> str:
        p = str(base / Path(_nonempty_str(v, key)).expanduser())
        if must_exist and not os.path.isfile(p):
            raise ConfigError(f"config {key}: no such file: {p}")
        return p

    return parse


def _platform(v: Any, key: str) -> str:
    from .image import Platform

    try:
        return str(Platform.parse(_nonempty_str(v, key)))
    except ValueError as e:
        raise ConfigError(f"config {key}: {e}") from None


def _rules(kind: str) -> Callable[[Any, str], list[Rule]]:
    def parse(v: Any, key: str) -> list[Rule]:
        specs = _str_tuple(v, key)
        rules = []
        for i, spec in enumerate(specs):
            try:
                rules.append(parse_anchore_rule(spec, kind=kind))
            except RuleError as e:
                raise ConfigError(f"config {key}[{i}]: {e}") from None
        return rules

    return parse


def _own_rules(v: Any, key: str) -> list[Rule]:
    """`secret_rules: [{id, regex, kind: secret|content, anchored: false}]`."""
    if not isinstance(v, list):
        raise ConfigError(f"config {key}: expected a list of rules, got {type(v).__name__}")
    rules = []
    for i, item in enumerate(v):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"config {where}: expected a mapping with id and regex")
        sec = _Section(item, where, Path("."))
        rid, pattern = sec.get("id", _nonempty_str), sec.get("regex", _nonempty_str)
        kind = sec.get("kind", _nonempty_str, "secret")
        if kind not in ("secret", "content"):
            raise ConfigError(f"config {where}.kind: secret or content, got {kind!r}")
        rule = Rule(rid, pattern, anchored=sec.get("anchored", _bool, False), kind=kind, source="config")
        sec.finish()
        try:
            _ = rule.regex  # compile now: a bad rule fails at load time
        except RuleError as e:
            raise ConfigError(f"config {where}.regex: {e}") from None
        rules.append(rule)
    return rules


# ---------------------------------------------------------------------------- key bookkeeping


class _Required:
    """The default of a key that must be given."""


_REQUIRED = _Required()


class _Section:
    """One mapping of the file: typed reads that name their key, and a warning for every key not read."""

    def __init__(self, raw: Mapping, where: str, base: Path) -> None:
        self.raw = raw
        self.where = where
        self.base = base
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, parse: Callable[..., T], default: T | _Required = _REQUIRED) -> T:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if isinstance(default, _Required):
                raise ConfigError(f"config {self.key(name)}: required")
            return default
        value = self.raw[name]
        if isinstance(value, str) and _UNSET.match(value):
            if isinstance(default, _Required):
                raise ConfigError(f"config {self.key(name)}: the environment variable in {value} is not set")
            log.warning(
                "config %s: the environment variable in %s is not set; using the default", self.key(name), value
            )
            return default
        return parse(value, self.key(name))

    def put(self, kw: dict[str, Any], name: str, parse: Callable[..., Any]) -> None:
        """kw[name] = the parsed value, when the file sets one."""
        _missing = object()
        value: object = self.get(name, parse, _missing)
        if value is not _missing:
            kw[name] = value

    def section(self, name: str) -> _Section | None:
        self.used.add(name)
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ConfigError(f"config {self.key(name)}: expected a mapping, got {type(value).__name__}")
        return _Section(value, self.key(name), self.base)

    def ignore(self, names: set[str] | frozenset[str]) -> None:
        self.used |= set(names)

    def finish(self) -> None:
        for name in self.raw:
            if name not in self.used:
                log.warning("config %s: unknown key (ignored)", self.key(str(name)))
