"""Hypothesis strategies for hostile requests (issue 13), shared by the property test and the fuzzer.

Each strategy draws a ``Probe`` against a ``Target`` (``tests/hostile_world.py``): WADO paths
grown from valid Endpoint addresses (appended segments, ``..``, encoded slashes, huge and Unicode
UIDs, frame lists), ImagingStudy searches (Unicode digits, dates, modifiers, repeats, control
characters), headers (odd Accept parameters, non-ASCII, Authorization and Prefer variants, Host),
bindings (mutated, truncated, transplanted, random base64url), ``/dyn/`` configs (mutations of
the valid one with NaN, Infinity, deep nesting, huge numbers and wrong types; random JSON trees)
and raw request lines with bytes an HTTP client refuses to send.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from .hostile_world import TOKEN, A, B, Probe, Target, encode


def pool(spec: str) -> list[str]:
    """A list of test values written compactly: separated by ``|``."""
    return spec.split("|")


# Characters str.isdigit() or int() accept that are not ASCII digits (superscripts, other scripts).
UNICODE_DIGITS = pool(
    "\u00b2|\u00b3|\u00b9|\u2460|\u0663|\u0661\u0662|\u06f4|\u07c1|\u0967|\u09e7|\u0e51|\uff11"
)
UNICODE_DIGITS += pool("\U0001d7d9|\u2474|\u3007|\u2163|\u00bd|\u0661")
NUMBERS = [*pool("0|1|-1|+1|1.5|1e3|999999999|9999999999| 1|1 |0x10|0001||NaN|inf|1_000|00|-0"), "9" * 400]
HOSTILE_TEXT = pool(
    " |..|%|%zz|%C3|%00|%0A|%0D%0A|&|=|;|#|,|*|?|\\|\"|'|<script>|\u00e9|\u202e|\ufeff|\U0010ffff"
)
HOSTILE_TEXT += ["", "|", "a" * 5000]
BAD_UIDS = pool(
    "1" * 65 + "|1.2.3\u0661|\U0001d7d9.2|.1|1..2|1.2.|0.0|00.1|*|?|1.2.3%00|%2e%2e|1.2.840.10008.1.2.1"
)
BAD_UIDS += ["1." * 3000 + "1", "a" * 70, "9" * 4000]


def text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_TEXT + UNICODE_DIGITS + NUMBERS), text())


def encoded(value: str, mode: str) -> str:
    """Percent-encode for a request target; ``raw`` keeps ASCII as is (``%``, ``/``, ``&``...)."""
    if mode == "quote":
        return quote(value, safe="")
    if mode == "path":
        return quote(value, safe="/:,;=*")
    return "".join(c if 0x20 < ord(c) < 0x7F else quote(c) for c in value)


def modes() -> st.SearchStrategy[str]:
    return st.sampled_from(["quote", "path", "raw"])


def methods() -> st.SearchStrategy[str]:
    return st.sampled_from(["GET"] * 12 + ["HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PROPFIND"])


def uid(target: Target) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(target.studies_a + list(target.studies_b) + BAD_UIDS), text(80))


# ---------------------------------------------------------------- headers

MEDIA = pool('application/dicom|"application/dicom"|application/octet-stream|image/jpeg|image/jls|image/png')
MEDIA += pool('application/dicom+json|application/fhir+json|*/*|image/*||"|application/dicom; x|text/html')
SYNTAXES = pool('*|"*"|1.2.840.10008.1.2.1|1.2.840.10008.1.2.4.50|1.2.840.10008.1.2.4.90|\u00e9|\u00fc')
SYNTAXES += pool("1.2.840.10008.1.2.1\u00e9|\u2603|*\u00a0|\u00e9\u00e9\u00e9")
SYNTAXES += ["1.2.3\u0661", "", "1" * 300, '"unterminated']
QS = pool("1|0|0.5|NaN|inf|-1|1e999|\u00b2||abc|0.0001|1.0000000001")
AUTHORIZATION = pool("Bearer abc|Bearer|Bearer |bearer x.y.z|BEARER  a  b|Basic c21hcnQ6d3Jvbmc=|Negotiate x")
AUTHORIZATION += [
    *pool("Bearer é|Bearer ..|Bearer \t x|Bearer eyJhbGciOiJub25lIn0.e30."),
    "Bearer " + "a" * 9000,
]
PREFER = pool(
    "handling=strict|handling=lenient|handling = strict|HANDLING=STRICT|return=minimal|respond-async"
)
PREFER += pool("handling=strict, respond-async|handling=\u00e9|wait=1e999|handling=strict; x")
HOSTS = pool("evil.example|127.0.0.1:1|[::1|\u00e9.example|x:99999|[::1]:80|127.0.0.1:8000/x|user@host|%2F")
HOSTS += ["a" * 300]


def header_value(raw: str) -> bytes:
    """What HTTP/1.1 can carry: no CR, LF, NUL or other controls but tab; no edge whitespace."""
    data = raw.encode("utf-8") if any(ord(c) > 0xFF for c in raw) else raw.encode("latin-1")
    return bytes(b for b in data if (b >= 0x20 and b != 0x7F) or b == 0x09).strip(b" \t")


@st.composite
def accept(draw: st.DrawFn) -> bytes:
    def one() -> str:
        media = draw(st.sampled_from(MEDIA + ["multipart/related"] * 4))
        params = []
        if media == "multipart/related" and draw(st.booleans()):
            params.append("type=" + draw(st.sampled_from(MEDIA)))
        if draw(st.booleans()):
            params.append("transfer-syntax=" + draw(st.sampled_from(SYNTAXES) | text(12)))
        if draw(st.booleans()):
            params.append("q=" + draw(st.sampled_from(QS)))
        if draw(st.booleans()):
            params.append(draw(text(10)) + "=" + draw(text(10)))
        return "; ".join([media, *params])

    return header_value(", ".join(one() for _ in range(draw(st.integers(1, 3)))))


@st.composite
def headers(draw: st.DrawFn) -> tuple[tuple[str, bytes], ...]:
    """One to three different hostile headers (Accept the most often)."""
    options: dict[str, st.SearchStrategy[Any]] = {
        "Accept": accept(),
        "Authorization": st.sampled_from(AUTHORIZATION) | text(60),
        "Prefer": st.sampled_from(PREFER) | text(30),
        "Host": st.sampled_from(HOSTS),
        "X-Forwarded-Proto": st.sampled_from(pool("https|javascript|ht tp|\u00e9|http, https|wss")),
        "X-Forwarded-For": st.sampled_from(pool("1.2.3.4|::1|\u00e9|unknown, 1.1.1.1|" + "a" * 200)),
        "Origin": st.sampled_from(pool("http://evil.example|null|\u00e9")),
        "Accept-Charset": st.sampled_from(pool("utf-8|\u00e9|*;q=NaN")),
        "Range": st.sampled_from(pool("bytes=0-10|bytes=-1|bytes=9999999999-|\u00e9")),
        draw(st.sampled_from(pool("X-Test|Accept-Encoding|Cookie|Content-Type|If-None-Match"))): text(30),
    }
    names = st.sampled_from(["Accept"] * 4 + sorted(options))
    chosen = []
    for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        value: str | bytes = draw(options[name])
        chosen.append((name, value if isinstance(value, bytes) else header_value(value)))
    return tuple((k, v) for k, v in chosen if v or k != "Host")


def focus(*dimensions: str) -> st.SearchStrategy[frozenset[str]]:
    """Which parts of a probe are hostile: one or two, the rest stays valid (so the hostile part
    reaches the code behind the checks the valid parts pass)."""
    return st.frozensets(st.sampled_from(dimensions), min_size=1, max_size=2)


# ---------------------------------------------------------------- bindings

BINDING_KINDS = ["valid"] * 4 + pool("other-study|foreign|truncated|flipped|parts|random|text")


@st.composite
def binding(draw: st.DrawFn, target: Target, prefix: str, study: str) -> str:
    """The right binding for (prefix, study), or a broken, foreign or random one."""
    own = target.bindings[prefix]
    valid = own.get(study) or next(iter(own.values()))
    kind = draw(st.sampled_from(BINDING_KINDS))
    if kind == "other-study":
        return draw(st.sampled_from(sorted(own.values())))
    if kind == "foreign":
        others = {t for name, tokens in target.bindings.items() if name != prefix for t in tokens.values()}
        return draw(st.sampled_from(sorted(others)))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "flipped":
        i = draw(st.integers(0, len(valid) - 1))
        return valid[:i] + draw(st.sampled_from("AaZz09-_.~%")) + valid[i + 1 :]
    if kind == "parts":
        pieces = st.sampled_from([*valid.split("."), "", "e30", "eyJhbGciOiJub25lIn0"])
        return ".".join(draw(st.lists(pieces, max_size=7)))
    if kind == "random":
        raw = draw(st.binary(max_size=draw(st.sampled_from([40, 400, 5000]))))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") * draw(st.sampled_from([1, 1, 5]))
    return encoded(draw(hostile_text()), draw(modes())) or "x"


# ---------------------------------------------------------------- WADO paths

SEGMENTS = pool(
    "..|.|%2e%2e|%2E|%2F|%252F|%2F..%2F..|series|instances|frames|metadata|rendered|thumbnail|bulk"
)
SEGMENTS += [*pool("studies|wado|fhir|ImagingStudy|7FE00010|7fe00010|1|0|%00|%0A|~|*|b|"), "a" * 300]
FRAMES = pool("1|0|-1|1,2|1,1,1|\u00b2|1,,2| 1|1.5|0x1|10000001|1,|\U0001d7d9|1;2|1%2C2|" + "1" * 20)
FRAMES += [",".join(["1"] * 10001)]
BULK = pool("7FE00010|7FE00010/1/00280010|ZZZZZZZZ|7FE00010/99999999/7FE00010|7FE00010/0/7FE00010")
WADO_PARAMS = pool(
    "quality|viewport|window|includefield|charset|annotation|accept|iccprofile|_count|limit|offset"
)


@st.composite
def wado_tail(draw: st.DrawFn, target: Target, study: str, bad: bool, extra: bool) -> str:
    """What follows ``/studies/``: a resource of A's study (``bad``: with hostile UIDs, frames or
    encodings), then (``extra``) appended hostile segments."""
    series, sop = draw(st.sampled_from(target.instances[study]))
    depth = draw(st.sampled_from(["study", "series", "instance", "frames", "bulk"]))
    hostile_uid = st.sampled_from([*BAD_UIDS, *target.studies_b]) if bad else st.nothing()
    parts = [draw(st.just(study) | hostile_uid)]
    if depth != "study":
        parts += ["series", draw(st.just(series) | hostile_uid)]
    if depth in ("instance", "frames", "bulk"):
        parts += ["instances", draw(st.just(sop) | hostile_uid)]
    if depth == "frames":
        numbers = st.lists(st.integers(-5, 10**12), min_size=1, max_size=30).map(
            lambda xs: ",".join(map(str, xs))
        )
        parts += ["frames", draw(st.sampled_from(FRAMES) | numbers) if bad else "1"]
    if depth == "bulk":
        parts += ["bulk", draw(st.sampled_from(BULK)) if bad else BULK[0]]
    parts += draw(st.sampled_from([[], [], ["metadata"], ["rendered"], ["thumbnail"]]))
    mode = draw(modes()) if bad else "path"
    tail = "/".join(encoded(p, "path" if p in (study, series, sop) else mode) for p in parts)
    segment = st.one_of(
        st.sampled_from(SEGMENTS),
        uid(target).map(lambda u: quote(u, safe="")),
        hostile_text().map(lambda s: encoded(s, mode)),
    )
    return "/".join([tail, *(draw(st.lists(segment, min_size=1, max_size=4)) if extra else [])])


@st.composite
def wado_probe(draw: st.DrawFn, target: Target) -> Probe:
    bad = draw(focus("binding", "path", "extra", "query", "headers", "method"))
    prefix = draw(st.sampled_from(["a", "a", "a", "d", target.dyn, target.dyn]))
    study = draw(st.sampled_from(target.studies_a))
    token = draw(binding(target, prefix, study)) if "binding" in bad else target.bindings[prefix][study]
    path = f"/{prefix}/wado/{token}/studies/{draw(wado_tail(target, study, 'path' in bad, 'extra' in bad))}"
    if "query" in bad:
        mode = draw(modes())
        query = draw(
            st.lists(
                st.tuples(st.sampled_from(WADO_PARAMS) | text(10), hostile_text()), min_size=1, max_size=3
            )
        )
        path += "?" + "&".join(f"{encoded(k, mode)}={encoded(v, mode)}" for k, v in query)
    method = draw(methods()) if "method" in bad else "GET"
    return Probe(
        method, path, draw(headers()) if "headers" in bad else (), static=not prefix.startswith("dyn/")
    )


# ---------------------------------------------------------------- FHIR search

PARAMS = pool("patient|subject|patient.identifier|subject.identifier|subject:Patient.identifier|identifier")
PARAMS += pool(
    "started|_lastUpdated|_include|_count|_offset|_format|_summary|_elements|_total|_sort|_revinclude"
)
PARAMS += pool("_has:Observation:patient:code|_id|modality|series")
# Parameters the server parses (rather than ignores): drawn more often.
PARSED = pool("_count|_offset|started|_lastUpdated|identifier|patient.identifier|_include")
MODIFIERS = pool("|||:missing|:exact|:contains|:identifier|:Patient|:not|:above|:below|:of-type|:text|:in")
MODIFIERS += pool(":iterate|:Endpoint|:|::")
PATIENTS = pool("pat-a|Patient/pat-a|http://x/fhir/Patient/pat-a|pat-b|pat-a,pat-a|pat-a,|,|Patient/")
PATIENTS += [*pool("Observation/pat-a|pat-a/_history/1|pat-a,pat-b|Patient/pat-a/"), "a" * 65]
PATIENT_IDENTIFIERS = [f"urn:test:mrn|{A}", f"|{A}", A, "urn:test:mrn|", "|", f"urn:test:mrn|{B}", "x|y|z"]
PREFIXES = pool("||eq|ne|gt|lt|ge|le|sa|eb|ap|xx|GE")
DATES = pool("2024|2024-01|2024-01-01|2024-01-01T10:00:00Z|2024-01-01T10:00:00.123456789+14:00|2024-13-45")
DATES += pool(
    "0000|0001-01-01|9999-12-31T23:59:60Z|2024-01-01T00:00:00+99:99|\uff12\uff10\uff12\uff14|2024-1-1"
)
DATES += pool("1e999|20240101|2024-02-30|99999-01-01|-2024|2024-01-01T25:61:61|2024-01-01T10:00|2024-01-01T")
INCLUDES = pool("ImagingStudy:endpoint|ImagingStudy:endpoint:Endpoint|*|ImagingStudy:*|Endpoint")
IDENTIFIER_SHAPES = pool("urn:oid:{}|urn:dicom:uid|urn:oid:{}|{}|x|{}|urn:oid:{},urn:oid:{}||urn:oid:{}")
FHIR_ROUTES = ["ImagingStudy"] * 8
FHIR_ROUTES += pool(
    "metadata|.well-known/smart-configuration|ImagingStudy/|Endpoint|imagingstudy|ImagingStudy/_search"
)


@st.composite
def param_value(draw: st.DrawFn, name: str, target: Target) -> str:
    base = name.partition(":")[0]
    if base in ("patient", "subject"):
        return draw(st.sampled_from(PATIENTS) | hostile_text())
    if base.endswith(".identifier"):
        return draw(st.sampled_from(PATIENT_IDENTIFIERS) | hostile_text())
    if base == "identifier":
        uids = st.sampled_from(target.studies_a + list(target.studies_b) + BAD_UIDS)
        shape = draw(st.sampled_from(IDENTIFIER_SHAPES))
        return shape.format(*(draw(uids) for _ in range(shape.count("{}"))))
    if base in ("started", "_lastUpdated"):
        return draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(DATES) | text(20))
    if base == "_include":
        return draw(st.sampled_from(INCLUDES) | hostile_text())
    if base in ("_count", "_offset"):
        big = st.integers(-(10**30), 10**30).map(str)
        return draw(st.sampled_from(UNICODE_DIGITS) | st.sampled_from(NUMBERS) | big | hostile_text())
    return draw(hostile_text())


def valid_params(target: Target) -> st.SearchStrategy[list[tuple[str, str]]]:
    study = st.sampled_from(target.studies_a).map(lambda u: ("identifier", f"urn:oid:{u}"))
    others = st.sampled_from(
        [
            ("_include", INCLUDES[0]),
            ("_count", "1"),
            ("_offset", "1"),
            ("started", "ge2000"),
            ("_lastUpdated", "le2100"),
        ]
    )
    return st.lists(study | others, max_size=2)


@st.composite
def search_probe(draw: st.DrawFn, target: Target) -> Probe:
    bad = draw(focus("params", "params", "route", "patient", "headers", "method", "encoding"))
    prefix = draw(st.sampled_from(["a", "a", "a", "d", target.dyn, target.dyn]))
    params = [] if "patient" in bad else [("patient", "pat-a")]
    params += draw(valid_params(target))
    if "params" in bad or "patient" in bad or "encoding" in bad:
        for _ in range(draw(st.integers(1, 3))):
            base = (
                "patient"
                if "patient" in bad
                else draw(st.sampled_from(PARSED) | st.sampled_from(PARAMS) | text(12))
            )
            name = base + draw(st.just("") | st.sampled_from(MODIFIERS))
            params.append((name, draw(param_value(name, target))))
    mode = draw(modes()) if "encoding" in bad else "quote"
    query = "&".join(f"{encoded(k, mode)}={encoded(v, mode)}" for k, v in draw(st.permutations(params)))
    route = draw(st.sampled_from(FHIR_ROUTES)) if "route" in bad else "ImagingStudy"
    path = f"/{prefix}/fhir/{route}" + (f"?{query}" if query else "")
    method = draw(methods()) if "method" in bad else "GET"
    return Probe(
        method, path, draw(headers()) if "headers" in bad else (), static=not prefix.startswith("dyn/")
    )


# ---------------------------------------------------------------- other paths, raw request lines

PATH_PIECES = pool("a|b|dyn|zz|..|%2e%2e|%2F|fhir|wado|healthz|metrics|ImagingStudy|studies||A|a%00|%C3%A9")
PATH_PIECES += ["a" * 70]
RAW_JUNK = [b"\xc3\xa9", b"\xff\xfe", b"\x80", b"\xe2\x80\xae", b"\xf0\x9d\x9f\x99", b"\xc3", b"%", b"\t"]
RAW_HEADERS = [
    b"",
    b"Accept: \xc3\xa9\r\n",
    b"Authorization: Bearer \xff\r\n",
    b"Prefer: handling=strict\xc3\xa9\r\n",
]


@st.composite
def path_probe(draw: st.DrawFn, target: Target) -> Probe:
    """Odd tenants and routes, and raw bytes in the request line that httpx would refuse to send."""
    study = target.studies_a[0]
    valid = f"/a/wado/{target.bindings['a'][study]}/studies/{study}/metadata"
    pieces = draw(
        st.lists(
            st.sampled_from([*PATH_PIECES, target.dyn, "dyn%2F" + target.dyn[4:]]), min_size=1, max_size=6
        )
    )
    path = draw(st.sampled_from(["/", "//", "/a/"])) + "/".join(pieces)
    path = draw(st.sampled_from([path, valid + "/" + "/".join(pieces), valid + "?" + "&".join(pieces)]))
    if draw(st.integers(0, 2)):
        return Probe(draw(methods()), path, draw(headers()))
    where = draw(st.integers(0, len(path)))
    line = path.encode()[:where] + draw(st.sampled_from(RAW_JUNK)) + path.encode()[where:]
    host = target.base.removeprefix("http://").encode()
    head = draw(st.sampled_from(RAW_HEADERS))
    head += b"" if head.startswith(b"Authorization") else b"Authorization: " + TOKEN.encode() + b"\r\n"
    raw = b"GET " + line + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + head + b"Connection: close\r\n\r\n"
    return Probe("GET", path, (), raw=raw)


# ---------------------------------------------------------------- /dyn/ configs

RAW = "\x00raw:"  # a string standing for JSON text inserted verbatim (numbers Python cannot hold)
RAW_NUMBERS = [*pool("NaN|Infinity|-Infinity|1e999|-1e999|1e-999|-0|1E400|0.1e-2000"), "9" * 400, "9" * 5000]
FIELDS = pool("bindingTtl|images.delay|images.delay.lookupUntil|images.delay.retrieveUntil|images.timeout")
FIELDS += pool(
    "images.seriesConcurrency|images.includeInstances|images.lookup|images.mrn|images.mrn.0|images.type"
)
FIELDS += pool(
    "images.endpoint|images.authentication|images.authentication.type|images.authentication.username"
)
FIELDS += pool(
    "images.ae|images.calledAe|images.storePort|images.cacheDir|images.firstResultTimeout|images.path"
)
FIELDS += pool(
    "images.maxTransfers|images.rescanSeconds|authorization|authorization.type|authorization.patient"
)
FIELDS += pool("authorization.disableAuthzChecks|authorization.patient.id|authorization.patient.resourceType")
FIELDS += pool(
    "authorization.patient.identifier|authorization.patient.identifier.0.value|authorization.client"
)
FIELDS += pool("authorization.patient.identifier.0.type|authorization.fhirBaseUrl|authorization.cacheTtl")
FIELDS += pool("authorization.timeout|//comment|$env|images.$env|")
NUMERIC_FIELDS = [
    f for f in FIELDS if re.search(r"Ttl|Until|[tT]imeout|Concurrency|Port|Transfers|Seconds", f)
]
KEYS = sorted({f.rpartition(".")[2] for f in FIELDS})
KNOWN = pool(
    "dicom-dimse|folder|dicom-web|smart-on-fhir|smart-on-fhir-independent|mock|open|bearer|http-basic"
)
KNOWN += pool("all-studies-on-server|studies-by-mrn|http://169.254.169.254/latest|/etc|file:///etc/passwd")
KNOWN += [*pool("http://[::1|http://127.0.0.1:99999||Patient|Observation"), "x" * 10000]
DELETE = object()


def json_trees(leaves: int = 20) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**40), 10**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(RAW_NUMBERS).map(lambda n: RAW + n),
        text(30),
    )
    return st.recursive(
        scalars,
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(text(10) | st.sampled_from(KEYS), kids, max_size=4)
        ),
        max_leaves=leaves,
    )


def values(orthanc_port: int) -> st.SearchStrategy[Any]:
    """Values to put anywhere in a config."""
    local = f"127.0.0.1:{orthanc_port}"
    known = st.sampled_from(
        [*KNOWN, f"dimse://{local}", f"http://{local}/dicom-web/../", f"http://{local}", {"$env": "HOME"}]
    )
    deep = st.integers(20, 3000).flatmap(
        lambda n: st.sampled_from([RAW + "[" * n + "]" * n, RAW + '{"a":' * n + "1" + "}" * n])
    )
    numbers = st.sampled_from([0, 1, -1, 59, 60, 604801, 4833623642, 1e308, 0.0001]) | st.integers(
        -(10**20), 10**20
    )
    return st.one_of(known, deep, json_trees(8), st.sampled_from(RAW_NUMBERS).map(lambda n: RAW + n), numbers)


def mutated(config: dict[str, Any], changes: list[tuple[str, Any]]) -> str:
    """JSON text of ``config`` with each (dotted path, value) set (DELETE removes it)."""
    data: Any = json.loads(json.dumps(config))
    for path, value in changes:
        if not path:
            data = None if value is DELETE else value
            continue
        *steps, last = path.split(".")
        node = data
        for key in steps:
            if isinstance(node, list):
                node = node[int(key)] if key.isdigit() and int(key) < len(node) else None
            elif isinstance(node, dict):
                if not isinstance(node.get(key), (dict, list)):
                    node[key] = {}
                node = node[key]
        if isinstance(node, dict):
            if value is DELETE:
                node.pop(last, None)
            else:
                node[last] = value
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = None if value is DELETE else value
    return raw_json(data)


def raw_json(data: Any) -> str:
    """``json.dumps`` that writes NaN/Infinity and the RAW strings verbatim."""
    out = json.dumps(data, allow_nan=True, ensure_ascii=False)
    return re.sub(r'"\\u0000raw:((?:[^"\\]|\\.)*)"', lambda m: str(json.loads(f'"{m.group(1)}"')), out)


SMART_TYPES = pool("smart-on-fhir|smart-on-fhir-with-epic-bugfixes|smart-on-fhir-with-meditech-bugfixes")
SMART_TYPES += pool("smart-on-fhir-independent|smart-on-fhir-jwt")
ORTHANC_PATHS = pool(
    "|/|/system|/dicom-web|/dicom-web/studies|/instances|/patients|/tools/now|/nothing|/app/explorer.html"
)


@st.composite
def smart_authorization(draw: st.DrawFn, port: int, secret: str) -> dict[str, Any]:
    """A SMART authorizer whose EHR is the archive (an allowed host answering nothing SMART)."""
    url = st.sampled_from(ORTHANC_PATHS).map(lambda p: f"http://127.0.0.1:{port}{p}")
    auth: dict[str, Any] = {"type": draw(st.sampled_from(SMART_TYPES)), "fhirBaseUrl": draw(url)}
    for key in draw(st.sets(st.sampled_from(["introspectionEndpoint", "tokenEndpoint", "jwksUri"]))):
        auth[key] = draw(url)
    if draw(st.booleans()):
        auth["introspectionAuth"] = draw(
            st.sampled_from(["bearer", "client_secret_basic", "private_key_jwt"])
        )
        auth["client"] = {"client_id": "smart", "client_secret": secret}
    if draw(st.booleans()):
        auth[draw(st.sampled_from(["issuer", "audience", "scope", "cacheTtl", "timeout"]))] = draw(
            values(port)
        )
    return auth


@st.composite
def dyn_config_text(draw: st.DrawFn, target: Target) -> str:
    """JSON text: mutations of the valid config, random trees, or not JSON at all."""
    port = int(target.internal[0].rpartition(":")[2])
    kind = draw(st.sampled_from(["mutate"] * 6 + ["smart", "tree", "shaped", "text"]))
    if kind == "smart":
        return raw_json(
            {**target.valid_dyn, "authorization": draw(smart_authorization(port, target.secrets[0]))}
        )
    if kind == "mutate":
        change = st.one_of(
            st.tuples(st.sampled_from(NUMERIC_FIELDS), st.sampled_from(RAW_NUMBERS).map(lambda n: RAW + n)),
            st.tuples(st.sampled_from(FIELDS), st.just(DELETE) | values(port)),
        )
        return mutated(target.valid_dyn, draw(st.lists(change, min_size=1, max_size=3)))
    if kind == "shaped":
        return raw_json({"authorization": draw(json_trees()), "images": draw(json_trees())})
    if kind == "tree":
        return raw_json(draw(json_trees(40)))
    return draw(
        text(200) | st.sampled_from(['{"a":1', "[", '{"authorization":{"type":"mock"}}', "null", "{}" * 999])
    )


@st.composite
def dyn_probe(draw: st.DrawFn, target: Target) -> Probe:
    config = draw(dyn_config_text(target))
    enc = encode(config)
    std = quote(base64.b64encode(config.encode()).decode(), safe="")
    enc = draw(
        st.sampled_from([enc] * 6 + [enc + "==", enc + "=", enc[:-1], enc.replace("-", "+"), "." + enc, std])
    )
    study = target.studies_a[0]
    token = target.bindings[target.dyn][study]
    rest = [
        "fhir/ImagingStudy?patient=pat-a",
        "fhir/ImagingStudy?patient=pat-a",
        "fhir/ImagingStudy?patient=pat-a&_include=ImagingStudy:endpoint",
        "fhir/ImagingStudy",
        "fhir/metadata",
        "fhir/.well-known/smart-configuration",
        f"wado/{token}/studies/{study}/metadata",
        f"wado/{token}/studies/{study}",
    ]
    extra = draw(headers()) if not draw(st.integers(0, 3)) else ()
    if '"smart-on-fhir' in config:
        token = draw(st.sampled_from(AUTHORIZATION) | st.just("Bearer " + "x" * 40))
        extra = (("Authorization", header_value(token)), *(h for h in extra if h[0] != "Authorization"))
    return Probe("GET", f"/dyn/{enc}/{draw(st.sampled_from(rest))}", extra, about_a=False, static=False)


def any_probe(target: Target) -> st.SearchStrategy[Probe]:
    return st.one_of(wado_probe(target), search_probe(target), dyn_probe(target), path_probe(target))
