"""SigV4 against AWS's published test suite, plus the ways a request can fail to verify."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from inferq.auth import sigv4

SUITE = Path(__file__).parent.parent / "data" / "aws-sig-v4-test-suite"
CASES = sorted(SUITE.rglob("*.req"), key=lambda p: p.stem)
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TIMESTAMP = "20150830T123600Z"
CREDENTIAL = sigv4.Credential(ACCESS_KEY, "20150830", "us-east-1", "service")
NOW = sigv4.parse_amz_date(TIMESTAMP)


@dataclass
class SuiteRequest:
    request: sigv4.SignedRequest
    body: bytes

    @property
    def payload_hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def header(self, name: str) -> str:
        return next(v.decode() for n, v in self.request.headers if n == name.encode())


def parse_request(path: Path) -> SuiteRequest:
    """Read a suite file: request line, headers (folded lines are more values), blank, body."""
    head, _, body = path.read_bytes().partition(b"\n\n")
    request_line, *header_lines = head.split(b"\n")
    method, rest = request_line.split(b" ", 1)
    target = rest.rsplit(b" ", 1)[0]
    raw_path, _, raw_query = target.partition(b"?")
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        if line[:1] in (b" ", b"\t"):
            headers.append((headers[-1][0], line.strip()))
        else:
            name, _, value = line.partition(b":")
            headers.append((name.lower(), value))
    request = sigv4.SignedRequest(method.decode(), raw_path, raw_query, headers)
    return SuiteRequest(request, body)


def unsigned_auth(request: sigv4.SignedRequest) -> sigv4.Authorization:
    names = tuple(sorted({name.decode() for name, _ in request.headers}))
    return sigv4.Authorization(CREDENTIAL, names, "0" * 64)


def expected(req_path: Path, suffix: str) -> str:
    return req_path.with_suffix(suffix).read_text()


@pytest.fixture(params=CASES, ids=[p.stem for p in CASES])
def case(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_canonical_request_matches_the_suite(case: Path) -> None:
    suite = parse_request(case)
    auth = unsigned_auth(suite.request)
    creq = sigv4.canonical_request(suite.request, auth, suite.payload_hash, s3=False)
    assert creq == expected(case, ".creq")


def test_string_to_sign_and_authorization_match_the_suite(case: Path) -> None:
    suite = parse_request(case)
    auth = unsigned_auth(suite.request)
    creq = sigv4.canonical_request(suite.request, auth, suite.payload_hash, s3=False)
    sts = sigv4.string_to_sign(TIMESTAMP, CREDENTIAL.scope, creq)
    assert sts == expected(case, ".sts")
    key = sigv4.signing_key(SECRET, *CREDENTIAL.scope.split("/")[:3])
    assert sigv4.authorization_header(auth, sigv4.sign(key, sts)) == expected(case, ".authz")


def test_signed_request_of_the_suite_verifies(case: Path) -> None:
    signed = parse_request(case.with_suffix(".sreq"))
    auth = sigv4.parse_authorization_header(signed.header("authorization"))
    assert auth.credential == CREDENTIAL
    sigv4.verify(signed.request, auth, signed.header("x-amz-date"), SECRET, signed.payload_hash)


def test_every_suite_case_was_found() -> None:
    assert len(CASES) >= 31


# --- negative cases --------------------------------------------------------------------------


@pytest.fixture
def vanilla() -> tuple[SuiteRequest, sigv4.Authorization]:
    signed = parse_request(SUITE / "get-vanilla-query" / "get-vanilla-query.sreq")
    return signed, sigv4.parse_authorization_header(signed.header("authorization"))


def verify(signed: SuiteRequest, auth: sigv4.Authorization, secret: str = SECRET) -> bytes:
    return sigv4.verify(signed.request, auth, TIMESTAMP, secret, signed.payload_hash)


def test_a_tampered_header_fails(vanilla: tuple[SuiteRequest, sigv4.Authorization]) -> None:
    signed, auth = vanilla
    headers = [(n, b"evil.example.com" if n == b"host" else v) for n, v in signed.request.headers]
    tampered = SuiteRequest(replace(signed.request, headers=headers), signed.body)
    with pytest.raises(sigv4.SignatureMismatch) as failure:
        verify(tampered, auth)
    assert "host:evil.example.com" in failure.value.canonical_request


def test_a_tampered_query_or_path_fails(vanilla: tuple[SuiteRequest, sigv4.Authorization]) -> None:
    signed, auth = vanilla
    for changed in (
        replace(signed.request, raw_query=b"Param1=value2"),
        replace(signed.request, raw_path=b"/other"),
        replace(signed.request, method="POST"),
    ):
        with pytest.raises(sigv4.SignatureMismatch):
            verify(SuiteRequest(changed, signed.body), auth)


def test_a_tampered_body_fails(vanilla: tuple[SuiteRequest, sigv4.Authorization]) -> None:
    signed, auth = vanilla
    with pytest.raises(sigv4.SignatureMismatch):
        verify(SuiteRequest(signed.request, b"surprise"), auth)


def test_the_wrong_secret_fails(vanilla: tuple[SuiteRequest, sigv4.Authorization]) -> None:
    signed, auth = vanilla
    with pytest.raises(sigv4.SignatureMismatch):
        verify(signed, auth, secret=SECRET.replace("K7", "K8"))


def test_the_signing_key_is_returned_and_cached(
    vanilla: tuple[SuiteRequest, sigv4.Authorization],
) -> None:
    signed, auth = vanilla
    before = sigv4.signing_key.cache_info().hits
    assert verify(signed, auth) == verify(signed, auth)
    assert sigv4.signing_key.cache_info().hits >= before + 1


@pytest.mark.parametrize(
    "header",
    [
        "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host, Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=" + "0" * 64,
    ],
    ids=["sigv2", "no-credential", "bad-signature", "short-scope", "host-unsigned"],
)
def test_malformed_authorization_headers_are_rejected(header: str) -> None:
    with pytest.raises(sigv4.MalformedAuthorization):
        sigv4.parse_authorization_header(header)


def test_authorization_without_spaces_after_commas_parses() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-date,Signature=" + "a" * 64
    )
    auth = sigv4.parse_authorization_header(header)
    assert auth.credential.service == "s3"
    assert auth.signed_headers == ("host", "x-amz-date")


def test_clock_skew_is_rejected_both_ways() -> None:
    sigv4.check_request_time(TIMESTAMP, NOW + 899, 900)
    sigv4.check_request_time(TIMESTAMP, NOW - 899, 900)
    for now in (NOW + 901, NOW - 901):
        with pytest.raises(sigv4.ClockSkewed) as failure:
            sigv4.check_request_time(TIMESTAMP, now, 900)
        assert failure.value.request_time == TIMESTAMP


def test_presigned_window() -> None:
    sigv4.check_presigned_time(TIMESTAMP, 60, NOW + 60)
    sigv4.check_presigned_time(TIMESTAMP, 60, NOW - 899)
    with pytest.raises(sigv4.PresignExpired):
        sigv4.check_presigned_time(TIMESTAMP, 60, NOW + 61)
    with pytest.raises(sigv4.PresignNotYetValid):
        sigv4.check_presigned_time(TIMESTAMP, 60, NOW - 901)


@pytest.mark.parametrize("value", ["2015-08-30T12:36:00Z", "20150830T123600", "20151330T123600Z"])
def test_malformed_dates_are_rejected(value: str) -> None:
    with pytest.raises((sigv4.MalformedAuthorization, ValueError)):
        sigv4.parse_amz_date(value)


def test_http_dates_convert_to_amz_dates() -> None:
    assert sigv4.amz_date_from_http_date("Sun, 30 Aug 2015 12:36:00 GMT") == TIMESTAMP
    with pytest.raises(sigv4.MalformedAuthorization):
        sigv4.amz_date_from_http_date("yesterday")


# --- presigned query parameters --------------------------------------------------------------

PRESIGNED = (
    b"list-type=2&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    b"&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
    b"&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    b"&X-Amz-Signature=" + b"b" * 64
)


def test_presigned_query_parses() -> None:
    auth = sigv4.parse_presigned_query(PRESIGNED)
    assert auth is not None
    assert auth.presigned
    assert (auth.credential.service, auth.timestamp, auth.expires) == ("s3", TIMESTAMP, 3600)
    assert sigv4.parse_presigned_query(b"list-type=2&prefix=X-Amz-") is None


def test_presigned_signature_is_not_part_of_the_canonical_query() -> None:
    query = sigv4.canonical_query(PRESIGNED, presigned=True)
    assert "X-Amz-Signature" not in query
    assert query.startswith("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F")
    assert query.endswith("&list-type=2")


@pytest.mark.parametrize("expires", [b"0", b"604801", b"soon"])
def test_presigned_expiry_must_be_within_a_week(expires: bytes) -> None:
    with pytest.raises(sigv4.MalformedAuthorization) as failure:
        sigv4.parse_presigned_query(PRESIGNED.replace(b"Expires=3600", b"Expires=" + expires))
    assert failure.value.presigned


def test_presigned_query_needs_its_parameters() -> None:
    with pytest.raises(sigv4.MalformedAuthorization):
        sigv4.parse_presigned_query(PRESIGNED.replace(b"&X-Amz-Date=20150830T123600Z", b""))
    with pytest.raises(sigv4.UnsupportedAuthorization):
        sigv4.parse_presigned_query(PRESIGNED.replace(b"HMAC-SHA256", b"ECDSA-P256-SHA256"))


# --- canonical forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "s3", "canonical"),
    [
        (b"/bucket/a%20b/c%2Fd", True, "/bucket/a%20b/c%2Fd"),
        (b"/bucket//x/../y", True, "/bucket//x/../y"),
        (b"/bucket/caf\xc3\xa9", True, "/bucket/caf%C3%A9"),
        (b"/bucket/it's(1)", True, "/bucket/it's(1)"),
        (b"/endpoints/my%20ep/invocations", False, "/endpoints/my%2520ep/invocations"),
        (b"/a/./b/../c/", False, "/a/c/"),
        (b"", False, "/"),
    ],
)
def test_canonical_uri(raw: bytes, s3: bool, canonical: str) -> None:
    assert sigv4.canonical_uri(raw, s3=s3) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"b=2&a=1", "a=1&b=2"),
        (b"a=2&a=1", "a=1&a=2"),
        (b"key=a%2fb&x=a+b", "key=a%2Fb&x=a%2Bb"),
        (b"uploads", "uploads="),
        (b"prefix=a%20b&&", "prefix=a%20b"),
        (b"k=%7e~", "k=~~"),
    ],
)
def test_canonical_query(raw: bytes, canonical: str) -> None:
    assert sigv4.canonical_query(raw) == canonical


def test_chunk_chain_reproduces_the_aws_streaming_example() -> None:
    """AWS's published chunked PUT: 64 KiB then 1 KiB of 'a', then the empty final chunk."""
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3"
    )
    chain = sigv4.ChunkChain(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
    for data, signature in (
        (b"a" * 65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (b"a" * 1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (b"", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ):
        assert not chain.verify_chunk(hashlib.sha256(data).hexdigest(), "0" * 64)
        assert chain.verify_chunk(hashlib.sha256(data).hexdigest(), signature)


# --- fast paths: same results as the plain computations ---------------------------------------

_HEAD = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, "
)


def test_the_cached_header_parse_keeps_each_signature() -> None:
    first = sigv4.parse_authorization_header(_HEAD + "Signature=" + "a" * 64)
    second = sigv4.parse_authorization_header(_HEAD + "Signature=" + "b" * 64)
    assert (first.signature, second.signature) == ("a" * 64, "b" * 64)
    assert first.credential == second.credential
    assert first.signed_headers == second.signed_headers == ("host", "x-amz-date")


@pytest.mark.parametrize(
    "header",
    [
        _HEAD + "Signature=" + "A" * 64,  # not lower-case hex: the uncached parse rejects it
        _HEAD.replace("host;", "") + "Signature=" + "a" * 64,  # host unsigned
        _HEAD.replace("/aws4_request", "") + "Signature=" + "a" * 64,  # bad credential
    ],
)
def test_the_cached_header_parse_keeps_the_errors(header: str) -> None:
    with pytest.raises(sigv4.MalformedAuthorization):
        sigv4.parse_authorization_header(header)


def test_canonical_headers_join_repeats_and_list_missing_ones() -> None:
    headers = [(b"Host", b"h"), (b"x-a", b" 1  2 "), (b"x-b", b"z"), (b"x-a", b"3")]
    assert sigv4.canonical_headers(headers, ("x-a", "host", "x-c", "x-a")) == (
        "host:h\nx-a:1 2,3\nx-c:\n"
    )


@pytest.mark.parametrize("size", [0, 32, 64, 65, 200])
def test_sign_is_hmac_sha256(size: int) -> None:
    import hmac

    key = bytes(range(size % 256)) * (size // 256 + 1)
    key = key[:size]
    assert sigv4.sign(key, "text é") == hmac.digest(key, "text é".encode(), "sha256").hex()
