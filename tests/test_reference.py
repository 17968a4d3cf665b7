"""Docker's reference grammar: normalisation, familiar forms and exact error messages."""

from __future__ import annotations

import re
import time

import pytest

from strata.digest import Digest
from strata.errors import InvalidReference
from strata.reference import (
    Reference,
    familiarize,
    go_quote,
    id_prefix,
    is_valid_tag,
    looks_like_id,
    parse,
    parse_any,
    parse_docker_ref,
    parse_normalized_named,
    parse_normalized_tagged,
    parse_tag_source,
    parse_tag_target,
    split_docker_domain,
    tag_error,
)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


HEX = "7caf0cf03434c3e44b14fe765474acd3c199effc5fdce734354d506c1002b917"
DGST = f"sha256:{HEX}"

# text -> (domain, path, tag, digest, full string, familiar string)
VALID = [
    ("ubuntu", "docker.io", "library/ubuntu", None, None, "docker.io/library/ubuntu", "ubuntu"),
    (
        "ubuntu:14.04",
        "docker.io",
        "library/ubuntu",
        "14.04",
        None,
        "docker.io/library/ubuntu:14.04",
        "ubuntu:14.04",
    ),
    (
        "ubuntu:latest",
        "docker.io",
        "library/ubuntu",
        "latest",
        None,
        "docker.io/library/ubuntu:latest",
        "ubuntu:latest",
    ),
    ("user/x", "docker.io", "user/x", None, None, "docker.io/user/x", "user/x"),
    ("user/x:1", "docker.io", "user/x", "1", None, "docker.io/user/x:1", "user/x:1"),
    ("a/b/c", "docker.io", "a/b/c", None, None, "docker.io/a/b/c", "a/b/c"),
    ("library/ubuntu", "docker.io", "library/ubuntu", None, None, "docker.io/library/ubuntu", "ubuntu"),
    ("library/a/b", "docker.io", "library/a/b", None, None, "docker.io/library/a/b", "library/a/b"),
    ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None, "docker.io/library/ubuntu", "ubuntu"),
    (
        "docker.io/library/ubuntu:1",
        "docker.io",
        "library/ubuntu",
        "1",
        None,
        "docker.io/library/ubuntu:1",
        "ubuntu:1",
    ),
    (
        "index.docker.io/ubuntu",
        "docker.io",
        "library/ubuntu",
        None,
        None,
        "docker.io/library/ubuntu",
        "ubuntu",
    ),
    (
        "index.docker.io/user/app:v2",
        "docker.io",
        "user/app",
        "v2",
        None,
        "docker.io/user/app:v2",
        "user/app:v2",
    ),
    ("localhost/app", "localhost", "app", None, None, "localhost/app", "localhost/app"),
    ("localhost:5000/a/b", "localhost:5000", "a/b", None, None, "localhost:5000/a/b", "localhost:5000/a/b"),
    (
        "localhost:5000/alicek107/my-image-name:0.0",
        "localhost:5000",
        "alicek107/my-image-name",
        "0.0",
        None,
        "localhost:5000/alicek107/my-image-name:0.0",
        "localhost:5000/alicek107/my-image-name:0.0",
    ),
    ("example.com/app", "example.com", "app", None, None, "example.com/app", "example.com/app"),
    (
        "127.0.0.1:5000/app:t",
        "127.0.0.1:5000",
        "app",
        "t",
        None,
        "127.0.0.1:5000/app:t",
        "127.0.0.1:5000/app:t",
    ),
    ("myhost:5000/app", "myhost:5000", "app", None, None, "myhost:5000/app", "myhost:5000/app"),
    ("Example.COM/app", "Example.COM", "app", None, None, "Example.COM/app", "Example.COM/app"),
    ("UPPERHOST/app", "UPPERHOST", "app", None, None, "UPPERHOST/app", "UPPERHOST/app"),
    ("[::1]:5000/app:t", "[::1]:5000", "app", "t", None, "[::1]:5000/app:t", "[::1]:5000/app:t"),
    ("[2001:db8::1]/app", "[2001:db8::1]", "app", None, None, "[2001:db8::1]/app", "[2001:db8::1]/app"),
    ("foo:5000", "docker.io", "library/foo", "5000", None, "docker.io/library/foo:5000", "foo:5000"),
    (
        "my-image-name",
        "docker.io",
        "library/my-image-name",
        None,
        None,
        "docker.io/library/my-image-name",
        "my-image-name",
    ),
    ("a__b", "docker.io", "library/a__b", None, None, "docker.io/library/a__b", "a__b"),
    (
        "a.b_c-d---e",
        "docker.io",
        "library/a.b_c-d---e",
        None,
        None,
        "docker.io/library/a.b_c-d---e",
        "a.b_c-d---e",
    ),
    (
        "x:Tag_With.Upper-1",
        "docker.io",
        "library/x",
        "Tag_With.Upper-1",
        None,
        "docker.io/library/x:Tag_With.Upper-1",
        "x:Tag_With.Upper-1",
    ),
    ("x:_t", "docker.io", "library/x", "_t", None, "docker.io/library/x:_t", "x:_t"),
    (
        f"x:{'t' * 128}",
        "docker.io",
        "library/x",
        "t" * 128,
        None,
        f"docker.io/library/x:{'t' * 128}",
        f"x:{'t' * 128}",
    ),
    (
        f"busybox@{DGST}",
        "docker.io",
        "library/busybox",
        None,
        DGST,
        f"docker.io/library/busybox@{DGST}",
        f"busybox@{DGST}",
    ),
    (
        f"busybox:1@{DGST}",
        "docker.io",
        "library/busybox",
        "1",
        DGST,
        f"docker.io/library/busybox:1@{DGST}",
        f"busybox:1@{DGST}",
    ),
    (
        f"localhost:5000/a/b@{DGST}",
        "localhost:5000",
        "a/b",
        None,
        DGST,
        f"localhost:5000/a/b@{DGST}",
        f"localhost:5000/a/b@{DGST}",
    ),
    (
        f"x@sha512:{'ab' * 64}",
        "docker.io",
        "library/x",
        None,
        f"sha512:{'ab' * 64}",
        f"docker.io/library/x@sha512:{'ab' * 64}",
        f"x@sha512:{'ab' * 64}",
    ),
]


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest", "full", "familiar"), VALID)
def test_parse_normalized_named(
    text: str, domain: str, path: str, tag: str | None, digest: str | None, full: str, familiar: str
) -> None:
    ref = parse_normalized_named(text)
    assert (ref.domain, ref.path, ref.tag) == (domain, path, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert ref.string() == full
    assert str(ref) == full
    assert ref.familiar_string() == familiar
    assert ref.repository == f"{domain}/{path}"
    assert ref.name == ref.repository
    # The familiar string parses back to the same reference.
    assert parse_normalized_named(familiar) == ref
    assert parse_normalized_named(full) == ref


# text -> Docker's message
INVALID = [
    ("", "invalid reference format"),
    ("UPPER", "invalid reference format: repository name (library/UPPER) must be lowercase"),
    ("UPPER:x", "invalid reference format: repository name (library/UPPER) must be lowercase"),
    ("Ubuntu:14.04", "invalid reference format: repository name (library/Ubuntu) must be lowercase"),
    ("foo/Bar", "invalid reference format: repository name (foo/Bar) must be lowercase"),
    ("docker.io/Foo", "invalid reference format: repository name (library/Foo) must be lowercase"),
    ("localhost:5000/Foo/bar:t", "invalid reference format: repository name (Foo/bar) must be lowercase"),
    (f"UP@{DGST}", "invalid reference format: repository name (library/UP@sha256) must be lowercase"),
    ("bad name:x", "invalid reference format"),
    ("a b", "invalid reference format"),
    ("-abc", "invalid reference format"),
    ("abc-", "invalid reference format"),
    ("a..b", "invalid reference format"),
    ("a___b", "invalid reference format"),
    (".a", "invalid reference format"),
    ("a/", "invalid reference format"),
    ("/a", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("ubuntu:", "invalid reference format"),
    ("ubuntu:-x", "invalid reference format"),
    ("ubuntu:.x", "invalid reference format"),
    (f"x:{'t' * 129}", "invalid reference format"),
    ("ubuntu:a:b", "invalid reference format"),
    ("ubuntu@", "invalid reference format"),
    ("ubuntu@sha256", "invalid reference format"),
    ("ubuntu@sha256:abc", "invalid reference format"),
    ("ubuntu@sha256:" + "z" * 64, "invalid reference format"),
    ("ubuntu@sha256:" + "a" * 40, "invalid checksum digest length"),
    ("ubuntu@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("ubuntu@md5:" + "a" * 32, "unsupported digest algorithm"),
    (
        "ubuntu@SHA256:" + "a" * 64,
        "invalid reference format: repository name (library/ubuntu@SHA256) must be lowercase",
    ),
    ("ubuntu:t@SHA256:" + "a" * 64, "invalid checksum digest format"),
    ("localhost:port/x", "invalid reference format"),
    ("-host.com/x", "invalid reference format"),
    ("héllo", "invalid reference format"),
    ("x:tàg", "invalid reference format"),
    ("ubuntu\n", "invalid reference format"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("a" * 238, "repository name must have at most 255 characters"),
    ("localhost/" + "a" * 246, "repository name must have at most 255 characters"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_normalized_named_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_normalized_named(text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    assert info.value.exit_code == 1


def test_length_limit_counts_whole_normalised_name() -> None:
    # docker.io/library/ + 237 = 255 characters: the longest name accepted
    assert len(parse_normalized_named("a" * 237).repository) == 255
    assert len(parse_normalized_named("localhost/" + "a" * 245).repository) == 255


def test_library_insertion_only_for_docker_hub_single_component() -> None:
    assert parse_normalized_named("localhost/ubuntu").path == "ubuntu"
    assert parse_normalized_named("example.com/ubuntu").path == "ubuntu"
    assert parse_normalized_named("docker.io/a/b").path == "a/b"
    assert parse_normalized_named("ubuntu").path == "library/ubuntu"


def test_parse_normalized_tagged_adds_latest_only_when_bare() -> None:
    assert parse_normalized_tagged("ubuntu").string() == "docker.io/library/ubuntu:latest"
    assert parse_normalized_tagged("ubuntu").familiar_string() == "ubuntu:latest"
    assert parse_normalized_tagged("ubuntu:14.04").tag == "14.04"
    digested = parse_normalized_tagged(f"ubuntu@{DGST}")
    assert digested.tag is None and str(digested.digest) == DGST


def test_parse_docker_ref_keeps_digest_over_tag() -> None:
    assert parse_docker_ref(f"busybox:latest@{DGST}").string() == f"docker.io/library/busybox@{DGST}"
    assert parse_docker_ref("busybox").string() == "docker.io/library/busybox:latest"
    assert parse_docker_ref("busybox:1").string() == "docker.io/library/busybox:1"


def test_parse_raw_without_normalisation() -> None:
    ref = parse("foo/bar:1")
    assert (ref.domain, ref.path, ref.tag) == ("foo", "bar", "1")
    ref = parse("ubuntu")
    assert (ref.domain, ref.path) == ("", "ubuntu")
    assert ref.repository == "ubuntu" and ref.string() == "ubuntu"
    with pytest.raises(InvalidReference, match=exact("repository name must have at least one component")):
        parse("")
    with pytest.raises(
        InvalidReference, match=exact("invalid reference format: repository name must be lowercase")
    ):
        parse("Foo")


def test_parse_any() -> None:
    assert parse_any(HEX) == Digest("sha256", HEX)
    assert parse_any(DGST) == Digest("sha256", HEX)
    ref = parse_any("ubuntu")
    assert isinstance(ref, Reference) and ref.string() == "docker.io/library/ubuntu"
    short = parse_any("7caf0cf03434")  # a short ID is a valid name too
    assert isinstance(short, Reference) and short.path == "library/7caf0cf03434"
    # "sha256:abc" is not a full digest: it is the name sha256 with tag abc
    odd = parse_any("sha256:abc")
    assert isinstance(odd, Reference) and odd.familiar_string() == "sha256:abc"
    with pytest.raises(InvalidReference, match=exact("invalid reference format")):
        parse_any("a b")


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        (HEX, HEX),
        (DGST, HEX),
        ("7caf0cf03434", "7caf0cf03434"),
        ("sha256:7caf", "7caf"),
        ("abc", "abc"),
        ("ubuntu", None),
        ("7CAF", None),
        (HEX + "0", None),
        ("sha256:", None),
        ("", None),
    ],
)
def test_id_like(text: str, prefix: str | None) -> None:
    assert id_prefix(text) == prefix
    assert looks_like_id(text) is (prefix is not None)


def test_with_tag_and_digest() -> None:
    ref = parse_normalized_named("ubuntu")
    tagged = ref.with_tag("14.04")
    assert tagged.familiar_string() == "ubuntu:14.04"
    both = tagged.with_digest(DGST)
    assert both.string() == f"docker.io/library/ubuntu:14.04@{DGST}"
    assert both.with_digest(Digest("sha256", "0" * 64)).digest == Digest("sha256", "0" * 64)
    assert both.without_tag().familiar_string() == f"ubuntu@{DGST}"
    assert both.without_digest() == tagged
    assert both.name_only() == ref and ref.is_name_only and not tagged.is_name_only
    assert ref.tag_name_only().tag == "latest"
    assert tagged.tag_name_only() is tagged
    with pytest.raises(InvalidReference, match=exact("invalid tag format")):
        ref.with_tag("-bad")
    with pytest.raises(InvalidReference, match=exact("invalid tag format")):
        ref.with_tag("")
    with pytest.raises(InvalidReference, match=exact("invalid digest format")):
        ref.with_digest("sha256:xyz")
    with pytest.raises(InvalidReference, match=exact("invalid checksum digest length")):
        ref.with_digest("sha256:" + "a" * 63)


def test_reference_is_frozen_and_hashable() -> None:
    ref = parse_normalized_named("ubuntu:1")
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
    assert len({ref, parse_normalized_named("docker.io/library/ubuntu:1")}) == 1


def test_familiarize() -> None:
    assert familiarize(parse_normalized_named("ubuntu:1")) == Reference("", "ubuntu", "1")
    assert familiarize(parse_normalized_named("user/x")).repository == "user/x"
    assert familiarize(parse_normalized_named("library/a/b")).repository == "library/a/b"
    local = parse_normalized_named("localhost:5000/a/b")
    assert familiarize(local) is local
    assert parse_normalized_named("localhost:5000/a/b").familiar == "localhost:5000/a/b"
    assert parse_normalized_named("ubuntu").familiar == "ubuntu"


@pytest.mark.parametrize(
    ("text", "domain", "remainder"),
    [
        ("ubuntu", "docker.io", "library/ubuntu"),
        ("ubuntu:1", "docker.io", "library/ubuntu:1"),
        ("a/b", "docker.io", "a/b"),
        ("index.docker.io/a", "docker.io", "library/a"),
        ("docker.io/a/b", "docker.io", "a/b"),
        ("localhost/a", "localhost", "a"),
        ("h:1/a", "h:1", "a"),
        ("h.x/a", "h.x", "a"),
        ("Host/a", "Host", "a"),
    ],
)
def test_split_docker_domain(text: str, domain: str, remainder: str) -> None:
    assert split_docker_domain(text) == (domain, remainder)


def test_tags() -> None:
    for good in ("latest", "1", "_", "A.b-C_d", "v" * 128):
        assert is_valid_tag(good)
    for bad in ("", "-x", ".x", "a b", "v" * 129, "é", "x\n"):
        assert not is_valid_tag(bad)


def test_tag_command_messages_match_docker() -> None:
    # /work/shared/reference/docker/reference-errors.txt
    with pytest.raises(InvalidReference) as info:
        parse_tag_target("UPPER:x")
    assert str(info.value) == (
        'Error parsing reference: "UPPER:x" is not a valid repository/tag: '
        "invalid reference format: repository name (library/UPPER) must be lowercase"
    )
    with pytest.raises(InvalidReference) as info:
        parse_tag_target("bad name:x")
    assert str(info.value) == (
        'Error parsing reference: "bad name:x" is not a valid repository/tag: invalid reference format'
    )
    assert parse_tag_target("my-image-name").familiar_string() == "my-image-name:latest"
    with pytest.raises(InvalidReference, match=exact("refusing to create a tag with a digest reference")):
        parse_tag_target(f"x@{DGST}")
    assert parse_tag_source(HEX) == Digest("sha256", HEX)
    with pytest.raises(InvalidReference, match=re.escape('Error parsing reference: "A B" is not')):
        parse_tag_source("A B")
    assert str(tag_error('a"b', ValueError("boom"))) == (
        'Error parsing reference: "a\\"b" is not a valid repository/tag: boom'
    )


def test_go_quote() -> None:
    assert go_quote("UPPER:x") == '"UPPER:x"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("a\tb\nc") == '"a\\tb\\nc"'
    assert go_quote("\x00\x7f") == '"\\x00\\x7f"'
    assert go_quote("é") == '"é"'
    assert go_quote("\u200b") == '"\\u200b"'


def test_long_hostile_inputs_are_fast() -> None:
    start = time.process_time()  # CPU time: what a catastrophic backtracking would burn, whatever the load
    for text in ("a" * 100_000 + "!", "a-" * 50_000 + "!", "a." * 50_000 + "/x!", "a/" * 50_000 + "!"):
        with pytest.raises(InvalidReference):
            parse_normalized_named(text)
    assert time.process_time() - start < 5
