"""Value types of the OCI image spec and Docker image manifest v2 schema 2.

Digests are always taken over raw bytes: every parsed object keeps the exact bytes it came from
(``raw``), and serialisers produce canonical bytes once, which then become the raw form.
"""

from __future__ import annotations

from strata import jsonfast
from strata.digest import Digest, digest_bytes
from strata.errors import InvalidArchive
from strata.image import mediatypes as mt
from strata.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "Descriptor",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "canonical_json",
    "empty_container_config",
    "load_json",
    "parse_manifest_or_index",
]

MAX_JSON_DEPTH = 128
"""How deeply manifests, indexes and configs may nest (real ones nest fewer than ten levels)."""

# compiled (and cached by re) when a document is deep enough to need the check
_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_NOT_BRACKET = r"[^\[\]{}]+"


def canonical_json(obj: Any) -> bytes:
    """Compact JSON as Docker writes configs and manifests (no spaces, keys in given order)."""
    import json  # here: reading a document needs only strata.jsonfast

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _too_deep(text: str, limit: int) -> bool:
    """True when the JSON text nests arrays/objects more than ``limit`` levels (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    import re  # here: only a document with many brackets is checked this way

    depth = 0
    for c in re.sub(_NOT_BRACKET, "", re.sub(_JSON_STRING, "", text, flags=re.S)):
        if c in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_json(raw: bytes | str, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses documents nested deeper than ``max_depth`` (``InvalidArchive``).

    The one JSON loader for manifests, indexes and configs, whoever parses them (client or server):
    nesting is checked before parsing, so a hostile document can never exhaust the recursion limit.
    """
    try:
        text = raw if isinstance(raw, str) else raw.decode(jsonfast.detect_encoding(raw), "surrogatepass")
        if _too_deep(text, max_depth):
            raise InvalidArchive(f"invalid {what}: nested more than {max_depth} levels deep")
        return jsonfast.loads(text)
    except RecursionError:
        raise InvalidArchive(f"invalid {what}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArchive(f"invalid {what}: {e}") from None


def _load(raw: bytes, what: str) -> dict[str, Any]:
    obj = load_json(raw, what)
    if not isinstance(obj, dict):
        raise InvalidArchive(f"invalid {what}: not a JSON object")
    return obj


class Platform(Value):
    __slots__ = ("architecture", "os", "os_version", "variant")
    os: str
    architecture: str
    variant: str
    os_version: str

    def __init__(self, os: str, architecture: str, variant: str = "", os_version: str = "") -> None:
        self._init(os=os, architecture=architecture, variant=variant, os_version=os_version)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Platform:
        return cls(
            os=str(obj.get("os", "")),
            architecture=str(obj.get("architecture", "")),
            variant=str(obj.get("variant", "")),
            os_version=str(obj.get("os.version", "")),
        )

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise InvalidArchive(f'"{text}": unknown operating system or architecture')
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


class Descriptor(Value):
    __slots__ = ("annotations", "artifact_type", "digest", "media_type", "platform", "size", "urls")
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] | None
    platform: Platform | None
    urls: tuple[str, ...]
    artifact_type: str

    def __init__(
        self,
        media_type: str,
        digest: Digest,
        size: int,
        annotations: dict[str, str] | None = None,
        platform: Platform | None = None,
        urls: tuple[str, ...] = (),
        artifact_type: str = "",
    ) -> None:
        self._init(media_type=media_type, digest=digest, size=size, annotations=annotations, platform=platform,
                   urls=urls, artifact_type=artifact_type)

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidArchive("invalid descriptor: not an object")
        try:
            size = int(obj["size"])
            digest = Digest.parse(str(obj["digest"]))
        except KeyError as e:
            raise InvalidArchive(f"invalid descriptor: missing {e.args[0]}") from None
        except (TypeError, ValueError) as e:
            raise InvalidArchive(f"invalid descriptor: {e}") from None
        if size < 0:
            raise InvalidArchive("invalid descriptor: negative size")
        plat = obj.get("platform")
        return cls(
            media_type=str(obj.get("mediaType", "")),
            digest=digest,
            size=size,
            annotations=obj.get("annotations"),
            platform=Platform.from_json(plat) if isinstance(plat, dict) else None,
            urls=tuple(obj.get("urls") or ()),
            artifact_type=str(obj.get("artifactType", "")),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


class Manifest(Value):
    """An image manifest (Docker v2s2 or OCI), with the raw bytes it was parsed from."""

    __slots__ = ("annotations", "artifact_type", "config", "layers", "media_type", "raw", "subject")
    _hidden = ("raw",)
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes
    annotations: dict[str, str] | None
    subject: Descriptor | None
    artifact_type: str

    def __init__(
        self,
        media_type: str,
        config: Descriptor,
        layers: tuple[Descriptor, ...],
        raw: bytes,
        annotations: dict[str, str] | None = None,
        subject: Descriptor | None = None,
        artifact_type: str = "",
    ) -> None:
        self._init(media_type=media_type, config=config, layers=layers, raw=raw, annotations=annotations,
                   subject=subject, artifact_type=artifact_type)

    @property
    def digest(self) -> Digest:
        return digest_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str = "") -> Manifest:
        obj = _load(raw, "manifest")
        if obj.get("schemaVersion") == 1:
            raise InvalidArchive("unsupported manifest: Docker image manifest schema 1 is deprecated and not supported")
        mtype = str(obj.get("mediaType") or media_type or mt.OCI_MANIFEST)
        if not mt.is_manifest(mtype):
            raise InvalidArchive(f"unsupported manifest media type: {mtype}")
        if "config" not in obj or not isinstance(obj.get("layers", []), list):
            raise InvalidArchive("invalid manifest: missing config or layers")
        subject = obj.get("subject")
        return cls(
            media_type=mtype,
            config=Descriptor.from_json(obj["config"]),
            layers=tuple(Descriptor.from_json(d) for d in obj.get("layers", [])),
            raw=raw,
            annotations=obj.get("annotations"),
            subject=Descriptor.from_json(subject) if subject else None,
            artifact_type=str(obj.get("artifactType", "")),
        )

    @classmethod
    def build(
        cls, config: Descriptor, layers: list[Descriptor], media_type: str = mt.DOCKER_MANIFEST
    ) -> Manifest:
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.to_json(),
            "layers": [d.to_json() for d in layers],
        }
        if media_type == mt.DOCKER_MANIFEST:
            import json

            raw = json.dumps(obj, indent=3).encode()
        else:
            raw = canonical_json(obj)
        return cls(media_type, config, tuple(layers), raw)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))


class Index(Value):
    """An OCI image index or Docker manifest list."""

    __slots__ = ("annotations", "manifests", "media_type", "raw")
    _hidden = ("raw",)
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes
    annotations: dict[str, str] | None

    def __init__(
        self, media_type: str, manifests: tuple[Descriptor, ...], raw: bytes, annotations: dict[str, str] | None = None
    ) -> None:
        self._init(media_type=media_type, manifests=manifests, raw=raw, annotations=annotations)

    @property
    def digest(self) -> Digest:
        return digest_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str = "") -> Index:
        obj = _load(raw, "index")
        mtype = str(obj.get("mediaType") or media_type or mt.OCI_INDEX)
        if not mt.is_index(mtype):
            raise InvalidArchive(f"unsupported index media type: {mtype}")
        mans = obj.get("manifests")
        if not isinstance(mans, list):
            raise InvalidArchive("invalid index: missing manifests")
        return cls(mtype, tuple(Descriptor.from_json(d) for d in mans), raw, obj.get("annotations"))

    @classmethod
    def build(cls, manifests: list[Descriptor], media_type: str = mt.OCI_INDEX) -> Index:
        obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
        obj["manifests"] = [d.to_json() for d in manifests]
        return cls(media_type, tuple(manifests), canonical_json(obj))


def parse_manifest_or_index(raw: bytes, media_type: str = "") -> Manifest | Index:
    """Parse by the declared media type, else by the document's own ``mediaType`` or shape."""
    obj = _load(raw, "manifest")
    mtype = str(obj.get("mediaType") or media_type or "")
    if mt.is_index(mtype) or (not mtype and "manifests" in obj):
        return Index.parse(raw, mtype)
    return Manifest.parse(raw, mtype)


class ImageConfig(Value):
    """An image configuration (the JSON whose digest is the image ID), kept as raw bytes + parsed dict;
    equal by its bytes."""

    __slots__ = ("data", "raw")
    _compare = ("raw",)
    _hidden = ("raw", "data")
    raw: bytes
    data: dict[str, Any]

    def __init__(self, raw: bytes, data: dict[str, Any]) -> None:
        self._init(raw=raw, data=data)

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        data = _load(raw, "image config")
        rootfs = data.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids", []), list):
            raise InvalidArchive("invalid image config: missing rootfs")
        for d in rootfs.get("diff_ids") or []:
            Digest.parse(str(d))
        return cls(raw, data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageConfig:
        return cls(canonical_json(data), data)

    @property
    def image_id(self) -> Digest:
        return digest_bytes(self.raw)

    @property
    def diff_ids(self) -> list[Digest]:
        return [Digest.parse(str(d)) for d in (self.data.get("rootfs", {}).get("diff_ids") or [])]

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.data.get("history") or []
        return [e for e in h if isinstance(e, dict)]

    @property
    def created(self) -> str:
        return str(self.data.get("created") or "")

    @property
    def author(self) -> str:
        return str(self.data.get("author") or "")

    @property
    def comment(self) -> str:
        """Docker's Comment: the config's own, else the last history entry's."""
        own = str(self.data.get("comment") or "")
        if not own and self.history:
            return str(self.history[-1].get("comment") or "")
        return own

    @property
    def container_config(self) -> dict[str, Any]:
        c = self.data.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def platform(self) -> Platform:
        return Platform(
            str(self.data.get("os") or ""),
            str(self.data.get("architecture") or ""),
            str(self.data.get("variant") or ""),
        )


def empty_container_config() -> dict[str, Any]:
    """A ``container.Config`` with Docker's field order and zero values."""
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }
