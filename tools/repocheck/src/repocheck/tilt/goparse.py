"""Go parsers Tilt calls on argument values, ported for the Tiltfile check.

Each function mirrors one Go function (named in its docstring) and returns
the error text Go returns, or None when Go accepts the value. Read from the
sources Tilt v0.34.0 builds with (Go 1.23 ``net/url``, ``strconv``; vendored
``k8s.io/apimachinery`` validation and ``github.com/distribution/reference``).
"""

from __future__ import annotations

import re

# ----------------------------------------------------------------- net/url.Parse


def _hex(c: str) -> bool:
    return c in "0123456789abcdefABCDEF"


def _should_escape(c: str, mode: str) -> bool:
    """net/url.shouldEscape for one ASCII character."""
    if c.isascii() and c.isalnum():
        return False
    if mode == "host" and c in "!$&'()*+,;=:[]<>\"":
        return False
    if c in "-_.~":
        return False
    if c in "$&+,/:;=?@":
        return {"path": c == "?", "user": c in "@/?:", "fragment": False}.get(mode, True)
    return not (mode == "fragment" and c in "!()*")


def _unescape(s: str, mode: str) -> str | None:
    """net/url.unescape: the error for a bad %-escape or a character a host may not hold."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or not _hex(s[i + 1]) or not _hex(s[i + 2]):
                return f"invalid URL escape {s[i : i + 3]!r}".replace("'", '"')
            if mode == "host" and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                return f'invalid URL escape "{s[i : i + 3]}"'
            i += 3
            continue
        if mode == "host" and ord(c) < 0x80 and _should_escape(c, mode):
            return f'invalid character "{c}" in host name'
        i += 1
    return None


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= b <= "9" for b in port[1:]))


def _parse_host(host: str) -> str | None:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            return "missing ']' in host"
        if not _valid_optional_port(host[i + 1 :]):
            return f'invalid port "{host[i + 1 :]}" after host'
    elif (i := host.rfind(":")) != -1 and not _valid_optional_port(host[i:]):
        return f'invalid port "{host[i:]}" after host'
    return _unescape(host, "host")


_USERINFO_EXTRA = set("-._:~!$&'()*+,;=%@")


def _parse_authority(authority: str) -> str | None:
    i = authority.rfind("@")
    problem = _parse_host(authority if i < 0 else authority[i + 1 :])
    if problem or i < 0:
        return problem
    userinfo = authority[:i]
    if not all((c.isascii() and c.isalnum()) or c in _USERINFO_EXTRA for c in userinfo):
        return "net/url: invalid userinfo"
    for part in userinfo.split(":", 1):
        if problem := _unescape(part, "user"):
            return problem
    return None


def _get_scheme(raw: str) -> tuple[str, str] | str:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            return "missing protocol scheme" if i == 0 else (raw[:i], raw[i + 1 :])
        return "", raw
    return "", raw


def _parse(raw: str) -> str | None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return "net/url: invalid control character in URL"
    if raw == "*":
        return None
    scheme_rest = _get_scheme(raw)
    if isinstance(scheme_rest, str):
        return scheme_rest
    scheme, rest = scheme_rest
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.split("?", 1)[0]
    if not rest.startswith("/"):
        if scheme:
            return None  # opaque
        if ":" in rest.split("/", 1)[0]:
            return "first path segment in URL cannot contain colon"
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        body = rest[2:]
        slash = body.find("/")
        authority, rest = (body, "") if slash < 0 else (body[:slash], body[slash:])
        if problem := _parse_authority(authority):
            return problem
    return _unescape(rest, "path")


def url_parse(raw: str) -> str | None:
    """net/url.Parse (Go 1.23): its error text, or None."""
    url, _, fragment = raw.partition("#")
    problem = _parse(url)
    if problem is None and fragment:
        problem = _unescape(fragment, "fragment")
        url = raw
    return None if problem is None else f'parse "{url}": {problem}'


# ----------------------------------------------------------------- port forward hosts

_OCTET = r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])"
_IP = rf"({_OCTET}\.){{3}}{_OCTET}"
_HOSTNAME = (
    r"(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])"
)


def valid_host(host: str) -> bool:
    """tiltfile.validHost (k8s.go): an IPv4 address or a hostname."""
    return bool(re.fullmatch(_IP, host, re.ASCII) or re.fullmatch(_HOSTNAME, host, re.ASCII))


# ----------------------------------------------------------------- strconv.Atoi


def atoi(text: str) -> int | None:
    """strconv.Atoi: an optional sign then ASCII digits only (no spaces, no ``_``)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


# ----------------------------------------------------------------- k8s validation

_QNAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QNAME}')"
)
_LABEL_VALUE = f"({_QNAME})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')"
)
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + r")*"


def is_qualified_name(value: str) -> list[str]:
    """k8s.io/apimachinery/pkg/util/validation.IsQualifiedName."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {_QNAME_MSG} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            errs.append("prefix part must be no more than 253 characters")
        elif not re.fullmatch(_DNS1123_SUBDOMAIN, prefix):
            errs.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character"
            )
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not re.fullmatch(_QNAME, name):
        errs.append(f"name part {_QNAME_MSG}")
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """k8s.io/apimachinery/pkg/util/validation.IsValidLabelValue."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_VALUE, value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def path_segment_name(value: str) -> str | None:
    """k8s.io/apimachinery/pkg/api/validation/path.ValidatePathSegmentName (first error)."""
    if value in (".", ".."):
        return f"may not be '{value}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain '{bad}'"
    return None


# ----------------------------------------------------------------- image references

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(rf"((?:{_DOMAIN}/)?{_REMOTE})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_NAME = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE})", re.ASCII)


def split_docker_domain(name: str) -> tuple[str, str]:
    """reference.splitDockerDomain: (domain, path), Docker Hub names under docker.io."""
    first, slash, rest = name.partition("/")
    if not slash:
        return "docker.io", "library/" + name
    if first == "index.docker.io":
        first = "docker.io"
    elif first != "localhost" and not ("." in first or ":" in first or first.lower() != first):
        return "docker.io", name
    if first == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    return first, rest


def parse_normalized_named(ref: str) -> str | None:
    """distribution/reference.ParseNormalizedNamed (what container.ParseNamed calls)."""
    if re.fullmatch(r"[a-f0-9]{64}", ref):
        return f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = split_docker_domain(ref)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    full = f"{domain}/{remainder}"
    match = _REFERENCE.fullmatch(full)
    if match is None:
        if _REFERENCE.fullmatch(full.lower()):
            return "repository name must be lowercase"
        return "invalid reference format"
    name = _NAME.fullmatch(match[1])
    if name is not None and len(name[2]) > 255:
        return "repository name must not be more than 255 characters"
    return None


# ----------------------------------------------------------------- semver ranges
# github.com/blang/semver (v3, vendored by Tilt): Parse, ParseRange.

_NUMBERS = set("0123456789")
_ALPHANUM = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") | _NUMBERS


def _number(text: str, what: str) -> int | str:
    if not text or not set(text) <= _NUMBERS:
        return f"Invalid character(s) found in {what} number {text!r}".replace("'", '"')
    if len(text) > 1 and text[0] == "0":
        return f'{what.capitalize()} number must not contain leading zeroes "{text}"'
    return int(text)


SemVer = tuple[int, int, int, tuple[tuple[bool, int, str], ...]]


def semver_parse(text: str) -> SemVer | str:
    """blang/semver.Parse: the version, or its error text."""
    if not text:
        return "Version string empty"
    parts = text.split(".", 2)
    if len(parts) != 3:
        return "No Major.Minor.Patch elements found"
    major, minor = _number(parts[0], "major"), _number(parts[1], "minor")
    if isinstance(major, str):
        return major
    if isinstance(minor, str):
        return minor
    patch_text, _, build = parts[2].partition("+")
    patch_text, dash, pre = patch_text.partition("-")
    patch = _number(patch_text, "patch")
    if isinstance(patch, str):
        return patch
    pre_parts: list[tuple[bool, int, str]] = []
    for item in pre.split(".") if dash else []:
        if not item:
            return "Prerelease is empty"
        if set(item) <= _NUMBERS:
            if len(item) > 1 and item[0] == "0":
                return f'Numeric PreRelease version must not contain leading zeroes "{item}"'
            pre_parts.append((True, int(item), ""))
        elif set(item) <= _ALPHANUM:
            pre_parts.append((False, 0, item))
        else:
            return f'Invalid character(s) found in prerelease "{item}"'
    if "+" in parts[2]:
        for item in build.split("."):
            if not item:
                return "Build meta data is empty"
            if not set(item) <= _ALPHANUM:
                return f'Invalid character(s) found in build meta data "{item}"'
    return (major, minor, patch, tuple(pre_parts))


def _semver_compare(a: SemVer, b: SemVer) -> int:
    """blang/semver.Version.Compare."""
    if a[:3] != b[:3]:
        return 1 if a[:3] > b[:3] else -1
    pa, pb = a[3], b[3]
    if not pa or not pb:
        return (not pa) - (not pb)
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            if x[0] != y[0]:
                return -1 if x[0] else 1  # numbers sort before words
            return 1 if (x[1], x[2]) > (y[1], y[2]) else -1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def _split_and_trim(text: str) -> list[str]:
    result: list[str] = []
    last, last_char = 0, ""
    for i, c in enumerate(text):
        if c == " " and last_char not in (">", "<", "="):
            if last < i - 1:
                result.append(text[last:i])
            last = i + 1
        elif c != " ":
            last_char = c
    if last < len(text) - 1:
        result.append(text[last:])
    return [r.replace(" ", "") for r in result]


def _split_comparator(part: str) -> tuple[str, str] | str:
    for i, c in enumerate(part):
        if c.isdigit():
            return part[:i].strip(), part[i:]
    return f'Could not get version from string: "{part}"'


def _bump(version: str, index: int) -> str:
    parts = version.split(".")
    parts[index] = str(int(parts[index]) + 1)
    return ".".join(parts)


def _expand_wildcard(part: str) -> list[str] | str:
    """blang/semver expandWildcardVersion for one comparator."""
    if "x" not in part:
        return [part]
    split = _split_comparator(part)
    if isinstance(split, str):
        return split
    op, version = split
    pieces = version.split(".")
    wildcard = {2: "minor", 3: "patch"}.get(len(pieces)) if pieces[-1] == "x" else None
    flat = version.replace(".x.x", ".x", 1).replace(".x", ".0", 1)
    if len(flat.split(".")) == 2:
        flat += ".0"
    out: list[str] = []
    increment = op in (">", "<=", "", "=", "==", "!=", "!")
    result_op = {">": ">=", ">=": ">=", "<": "<", "<=": "<"}.get(
        op, "<" if op in ("", "=", "==") else ">="
    )
    if op in ("", "=", "=="):
        out.append(">=" + flat)
    elif op in ("!=", "!"):
        out.append("<" + flat)
    result = flat
    if increment:
        try:
            result = {"patch": _bump(flat, 1), "minor": _bump(flat, 0)}.get(wildcard or "", "")
        except ValueError:
            result = ""
    return [*out, result_op + result]


def semver_range_check(constraint: str, version: str) -> str | None:
    """blang/semver.ParseRange(constraint)(version).

    The parse error (as Tilt wraps it), ``"mismatch"``, or None when the range admits it.
    """
    have = semver_parse(version)
    assert not isinstance(have, str)
    parts = _split_and_trim(constraint)
    alternatives: list[list[str]] = []
    last = 0
    for i, part in enumerate(parts):
        if part == "||":
            if i == 0:
                return "error parsing version constraint: First element in range is '||'"
            alternatives.append(parts[last:i])
            last = i + 1
    if last == len(parts):
        return "error parsing version constraint: Last element in range is '||'"
    alternatives.append(parts[last:])
    admitted = False
    for alternative in alternatives:
        expanded: list[str] = []
        for part in alternative:
            more = _expand_wildcard(part)
            if isinstance(more, str):
                return f"error parsing version constraint: {more}"
            expanded.extend(more)
        all_ok = True
        for part in expanded:
            split = _split_comparator(part)
            if isinstance(split, str):
                return f"error parsing version constraint: {split}"
            op, text = split
            if op not in ("", "=", "==", ">", ">=", "<", "<=", "!", "!="):
                return (
                    "error parsing version constraint: Could not parse Range "
                    f'"{part}": Could not parse comparator "{op}" in "{part}"'
                )
            want = semver_parse(text)
            if isinstance(want, str):
                return (
                    "error parsing version constraint: Could not parse Range "
                    f'"{part}": Could not parse version "{text}" in "{part}": {want}'
                )
            c = _semver_compare(have, want)
            all_ok = (
                all_ok
                and {
                    "": c == 0,
                    "=": c == 0,
                    "==": c == 0,
                    "!": c != 0,
                    "!=": c != 0,
                    ">": c > 0,
                    ">=": c >= 0,
                    "<": c < 0,
                    "<=": c <= 0,
                }[op]
            )
        admitted = admitted or all_ok
    return None if admitted else "mismatch"
