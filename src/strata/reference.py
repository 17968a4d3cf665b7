"""Image references: Docker's grammar (``[registry[:port]/]path[:tag][@digest]``) and normalisation.

Behaves like ``distribution/reference`` as used by Docker: ``ubuntu`` is
``docker.io/library/ubuntu`` (familiar name ``ubuntu``), ``user/app`` is ``docker.io/user/app``,
``index.docker.io`` is ``docker.io``, and the first path element is a registry when it contains
``.`` or ``:``, is ``localhost``, or has an uppercase letter. Every failure raises
:class:`strata.errors.InvalidReference` whose ``str()`` is Docker's exact message.

Typical use::

    ref = parse_normalized_tagged("ubuntu")
    ref.string()            # 'docker.io/library/ubuntu:latest'
    ref.familiar_string()   # 'ubuntu:latest'
"""

from __future__ import annotations

from strata.digest import Digest
from strata.errors import InvalidReference

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import NoReturn

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "LEGACY_DEFAULT_DOMAIN",
    "NAME_TOTAL_LENGTH_MAX",
    "OFFICIAL_REPO_PREFIX",
    "Reference",
    "familiarize",
    "go_quote",
    "id_prefix",
    "is_valid_tag",
    "looks_like_id",
    "parse",
    "parse_any",
    "parse_docker_ref",
    "parse_normalized_named",
    "parse_normalized_tagged",
    "parse_stored",
    "parse_tag_source",
    "parse_tag_target",
    "split_docker_domain",
    "tag_error",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# Docker's exact messages.
ERR_INVALID_FORMAT = "invalid reference format"
ERR_UPPERCASE = "invalid reference format: repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must have at most {NAME_TOTAL_LENGTH_MAX} characters"
ERR_TAG_FORMAT = "invalid tag format"
ERR_DIGEST_FORMAT = "invalid digest format"
ERR_CHECKSUM_FORMAT = "invalid checksum digest format"
ERR_CHECKSUM_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"

# --- the grammar -------------------------------------------------------------------------------

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

class _Lazy:
    """A pattern (ASCII) compiled on first use: compiling every one of the grammar's costs each
    command about 2 ms, and most commands use two or none."""

    __slots__ = ("_compiled", "_pattern")

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def fullmatch(self, text: str) -> re.Match[str] | None:
        if self._compiled is None:
            import re  # here: the listing commands' names are read without it (see _parse_plain)

            self._compiled = re.compile(self._pattern, re.ASCII)
        return self._compiled.fullmatch(text)


# groups: name, its domain, its path, tag, digest (the one match splits the name as distribution's
# anchored name expression would: the domain is tried first, and it cannot hold a "/")
_REFERENCE_RE = _Lazy(rf"((?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME}))(?::({_TAG}))?(?:@({_DIGEST}))?")
_TAG_RE = _Lazy(_TAG)
_DIGEST_RE = _Lazy(_DIGEST)
_IDENTIFIER_RE = _Lazy(r"[a-f0-9]{64}")
_ID_PREFIX_RE = _Lazy(r"(?:sha256:)?([a-f0-9]{1,64})")

# go-digest: the algorithms Docker registers, with their hex lengths.
_DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_RE = _Lazy(r"[a-f0-9]+")
_GO_DIGEST_RE = _Lazy(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


class Reference:
    """A parsed reference. ``domain`` is empty only for references from :func:`parse` without one,
    or for the result of :func:`familiarize`. An immutable value, equal and hashed by all four parts
    (written out rather than a dataclass: every command loads this module, and ``dataclasses`` costs
    a listing command a tenth of its time)."""

    __slots__ = ("digest", "domain", "path", "tag")
    domain: str
    path: str
    tag: str | None
    digest: Digest | None

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: Digest | None = None) -> None:
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Reference], tuple[str, str, str | None, Digest | None]]:
        return Reference, (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return (self.domain, self.path, self.tag, self.digest) == (other.domain, other.path, other.tag, other.digest)

    def __hash__(self) -> int:
        return hash((self.domain, self.path, self.tag, self.digest))

    def __repr__(self) -> str:
        return f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, digest={self.digest!r})"

    # --- names ---------------------------------------------------------------------------------

    @property
    def repository(self) -> str:
        """The full name without tag or digest: ``docker.io/library/ubuntu``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    name = repository

    @property
    def familiar(self) -> str:
        """The name as Docker shows it: ``ubuntu``, ``user/app``, ``localhost:5000/a/b``."""
        return familiarize(self).repository

    def string(self) -> str:
        """The full form: ``docker.io/library/ubuntu:14.04[@sha256:…]``."""
        return self.repository + self._suffix()

    def familiar_string(self) -> str:
        """The familiar form: ``ubuntu:14.04``, ``localhost:5000/a/b@sha256:…``."""
        return self.familiar + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + str(self.digest)
        return out

    def __str__(self) -> str:
        return self.string()

    # --- shape ---------------------------------------------------------------------------------

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def name_only(self) -> Reference:
        return Reference(self.domain, self.path)

    def with_tag(self, tag: str) -> Reference:
        """This reference with ``tag`` (any digest is kept, as distribution's ``WithTag``)."""
        if not is_valid_tag(tag):
            raise InvalidReference(ERR_TAG_FORMAT)
        return Reference(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest: Digest | str) -> Reference:
        """This reference with ``digest`` (any tag is kept, as distribution's ``WithDigest``)."""
        text = str(digest)
        if not _DIGEST_RE.fullmatch(text):
            raise InvalidReference(ERR_DIGEST_FORMAT)
        return Reference(self.domain, self.path, self.tag, _parse_digest(text))

    def without_tag(self) -> Reference:
        return Reference(self.domain, self.path, None, self.digest)

    def without_digest(self) -> Reference:
        return Reference(self.domain, self.path, self.tag)

    def tag_name_only(self) -> Reference:
        """Adds ``latest`` when there is neither tag nor digest (``TagNameOnly``)."""
        return self.with_tag(DEFAULT_TAG) if self.is_name_only else self


# --- parsing -----------------------------------------------------------------------------------


def parse(text: str) -> Reference:
    """Parse without normalisation (distribution's ``Parse``); the domain may be empty."""
    plain = _parse_plain(text)
    if plain is not None:
        return plain
    m = _REFERENCE_RE.fullmatch(text)
    if m is None:
        if text == "":
            raise InvalidReference(ERR_NAME_EMPTY)
        if _REFERENCE_RE.fullmatch(text.lower()) is not None:
            raise InvalidReference(ERR_UPPERCASE)
        raise InvalidReference(ERR_INVALID_FORMAT)
    name, domain, path, tag, digest = m.group(1, 2, 3, 4, 5)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(ERR_NAME_TOO_LONG)
    return Reference(domain or "", path, tag, _parse_digest(digest) if digest else None)


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _path_component(text: str) -> bool:
    """``text`` matches the grammar's path component: lower-case alphanumeric runs joined by one
    separator each (``.``, ``_``, ``__`` or any number of ``-``)."""
    if not text or text[0] not in _ALNUM or text[-1] not in _ALNUM:
        return False
    run = ""
    for ch in text:
        if ch in _ALNUM:
            if run and run not in (".", "_", "__") and run.strip("-"):
                return False
            run = ""
        elif ch in "._-":
            run += ch
        else:
            return False
    return True


def _domain(text: str) -> bool:
    """``text`` matches the grammar's domain name with an optional port (not an IPv6 literal)."""
    host, colon, port = text.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        return False
    return all(part and _DOMAIN_CHARS.issuperset(part) and part[0] != "-" and part[-1] != "-"
               for part in host.split("."))


def _parse_plain(text: str) -> Reference | None:
    """``domain/path[:tag]`` (the shape every normalised name has) checked part by part as the grammar
    would check it, without compiling the grammar; None for any other shape (a digest, no domain, an
    IPv6 host, text the grammar refuses): :func:`parse` then asks the grammar. The grammar gives the
    same split: a domain cannot hold a ``/``, a path a ``:``, a tag a ``/`` or ``:``."""
    domain, slash, rest = text.partition("/")
    path, colon, tag = rest.partition(":")
    if not slash or "@" in text or len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX or not _domain(domain):
        return None
    if colon and not (0 < len(tag) <= 128 and _TAG_CHARS.issuperset(tag) and tag[0] not in ".-"):
        return None
    if not all(_path_component(part) for part in path.split("/")):
        return None
    return Reference(domain, path, tag if colon else None)


_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/")
_TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def parse_stored(text: str) -> Reference:
    """A full reference as a store wrote it (``domain/path[:tag][@digest]``, validated by :func:`parse`
    when it was stored), split without compiling the grammar: only the characters of each part are
    checked again. Text of any other shape goes through :func:`parse` (same value, same errors)."""
    name, at, digest = text.partition("@")
    domain, slash, path = name.partition("/")
    tag: str | None = None
    colon = path.rfind(":")
    if colon > path.rfind("/"):
        path, tag = path[:colon], path[colon + 1 :]
    if not domain or not slash or not path or not _PATH_CHARS.issuperset(path):
        return parse(text)
    if tag is not None and not (0 < len(tag) <= 128 and _TAG_CHARS.issuperset(tag) and tag[0] not in ".-"):
        return parse(text)
    try:
        ref = Reference(domain, path, tag, Digest.parse(digest) if at else None)
    except ValueError:
        return parse(text)
    return ref if ref.string() == text else parse(text)


def _is_identifier(text: str) -> bool:
    """A full 64-hex image ID (``[a-f0-9]{64}``)."""
    return len(text) == 64 and not text.strip("0123456789abcdef")


def parse_normalized_named(text: str) -> Reference:
    """Parse a name as typed on Docker's command line (``ParseNormalizedNamed``)."""
    if _is_identifier(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(f"{domain}/{remainder}")


def parse_normalized_tagged(text: str) -> Reference:
    """As :func:`parse_normalized_named`, adding ``latest`` when there is no tag and no digest."""
    return parse_normalized_named(text).tag_name_only()


def parse_docker_ref(text: str) -> Reference:
    """Docker's ``ParseDockerRef``: normalised, tagged ``latest`` if bare, and when both a tag and a
    digest are given only the digest is kept."""
    ref = parse_normalized_named(text)
    if ref.tag is not None and ref.digest is not None:
        return ref.without_tag()
    return ref.tag_name_only()


def parse_any(text: str) -> Reference | Digest:
    """``ParseAnyReference``: a 64-hex ID or a full digest gives a :class:`Digest`, anything else a
    normalised :class:`Reference`."""
    if _is_identifier(text):
        return Digest("sha256", text)
    if Digest.is_valid(text):
        return Digest.parse(text)
    return parse_normalized_named(text)


def split_docker_domain(name: str) -> tuple[str, str]:
    """Split ``name`` into registry domain and remainder, normalising to Docker Hub."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def familiarize(ref: Reference) -> Reference:
    """Drop ``docker.io/`` and, for a one-element official name, ``library/``."""
    if ref.domain != DEFAULT_DOMAIN:
        return ref
    path = ref.path
    if path.startswith(OFFICIAL_REPO_PREFIX):
        rest = path[len(OFFICIAL_REPO_PREFIX) :]
        if "/" not in rest:
            path = rest
    return Reference("", path, ref.tag, ref.digest)


def is_valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


def looks_like_id(text: str) -> bool:
    """True when ``text`` could name an image by ID: a (short) lowercase hex prefix, optionally
    after ``sha256:``. Whether a name or an ID wins is the store's lookup order, as Docker's."""
    return _ID_PREFIX_RE.fullmatch(text) is not None


def id_prefix(text: str) -> str | None:
    """The hex part of an ID-like ``text`` (see :func:`looks_like_id`), else ``None``."""
    m = _ID_PREFIX_RE.fullmatch(text)
    return m.group(1) if m else None


# --- messages the CLI needs --------------------------------------------------------------------


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string: double quotes with Go escapes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def tag_error(text: str, err: Exception) -> InvalidReference:
    """Docker's wrapping of a bad reference given to ``tag``:
    ``Error parsing reference: "UPPER:x" is not a valid repository/tag: <cause>``."""
    return InvalidReference(f"Error parsing reference: {go_quote(text)} is not a valid repository/tag: {err}")


def parse_tag_source(text: str) -> Reference | Digest:
    """The SOURCE of ``docker tag``: any reference or ID, errors wrapped as Docker does."""
    try:
        return parse_any(text)
    except InvalidReference as e:
        raise tag_error(text, e) from None


def parse_tag_target(text: str) -> Reference:
    """The TARGET of ``docker tag``: a normalised name, ``latest`` when untagged, never a digest."""
    try:
        ref = parse_normalized_named(text)
    except InvalidReference as e:
        raise tag_error(text, e) from None
    if ref.digest is not None:
        raise InvalidReference("refusing to create a tag with a digest reference")
    return ref.tag_name_only()


# --- digests -----------------------------------------------------------------------------------


def _parse_digest(text: str) -> Digest:
    """go-digest's ``Parse`` with its messages (the text already matched the reference grammar)."""
    algorithm, sep, encoded = text.partition(":")
    if not algorithm or not sep or not encoded:
        raise InvalidReference(ERR_CHECKSUM_FORMAT)
    size = _DIGEST_ALGORITHMS.get(algorithm)
    if size is None:
        if not _GO_DIGEST_RE.fullmatch(text):
            raise InvalidReference(ERR_CHECKSUM_FORMAT)
        raise InvalidReference(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != size:
        raise InvalidReference(ERR_CHECKSUM_LENGTH)
    if not _HEX_RE.fullmatch(encoded):
        raise InvalidReference(ERR_CHECKSUM_FORMAT)
    return Digest(algorithm, encoded)
