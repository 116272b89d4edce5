"""`_clientkit._redact` on its own: what `Secret`, `redact_headers`, `redact_text` and `redact_excerpt` promise.

Written from the module's promises (issue 17): a Secret never shows itself, every occurrence of a secret is
masked (also when the server echoes it escaped), credential headers are masked in any case, and an excerpt
is masked before it is cut.
"""

from __future__ import annotations

import html
import json
import pickle
import re
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _clientkit import _redact
from _clientkit._redact import (
    HEADER_MASK,
    MASK,
    SENSITIVE_HEADERS,
    Secret,
    contains_secret,
    redact_excerpt,
    redact_headers,
    redact_text,
)


@pytest.fixture(autouse=True)
def _cold_pattern_cache():
    """Each test builds the escaped-forms patterns it uses: the module keeps them per secret, and a test
    that found one built by an earlier test would not exercise the building at all."""
    _redact._PATTERNS.clear()


SECRET = 's3cr/et"Zq+=9'
# secrets as they come: token alphabets, and anything printable
token = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=6, max_size=40
)
any_secret = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=6, max_size=24
).filter(lambda s: s.strip() == s and "*" not in s)


# ------------------------------------------------------------------------------------------ Secret


def test_secret_never_shows_itself():
    """str, repr, format, f-strings (with any spec or conversion) and %-formatting all hide the value."""
    secret = Secret(SECRET)
    shown = [
        str(secret),
        repr(secret),
        format(secret),
        format(secret, ">40"),
        f"{secret}",
        f"{secret!s}",
        f"{secret!r}",
        f"{secret:^30}",
        "%s" % secret,  # noqa: UP031 - the old formatting is a way to show a value too
        "%r" % secret,  # noqa: UP031
        str([secret]),
        str({"k": secret}),
    ]
    for text in shown:
        assert "s3cr" not in text
        assert "***" in text
    assert repr(secret) == "Secret('***')"
    assert str(secret) == repr(secret)


@given(value=any_secret)
def test_repr_shows_no_character_of_any_secret(value):
    """No prefix, suffix or length of the value is told by the repr: it is the same for every secret."""
    assert repr(Secret(value)) == repr(Secret("x")) == format(Secret(value), "10")


def test_reveal_equality_hash_and_truth():
    secret = Secret(SECRET)
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET)
    assert secret != Secret(SECRET + "x")
    assert secret != Secret(SECRET[:-1])
    assert secret != SECRET  # a Secret never equals the plain string
    assert hash(secret) == hash(Secret(SECRET))
    assert {secret, Secret(SECRET)} == {secret}
    assert len({hash(Secret(str(i))) for i in range(20)}) > 1  # a hash that tells values apart
    assert bool(Secret("x")) is True
    assert bool(Secret("")) is False
    with pytest.raises(AttributeError):
        secret.other = 1  # type: ignore[attr-defined]  # __slots__: nothing else to leak through


def test_a_secret_compares_non_ascii_values():
    assert Secret("päss") == Secret("päss")
    assert Secret("päss") != Secret("pass")


def test_pickling_keeps_the_value_only_inside():
    """A pickled and restored Secret still reveals its value and still hides it in its repr."""
    restored = pickle.loads(pickle.dumps(Secret(SECRET)))  # noqa: S301 - our own bytes
    assert restored.reveal() == SECRET
    assert SECRET not in repr(restored)


# ------------------------------------------------------------------------------------------ headers


@pytest.mark.parametrize("name", sorted(SENSITIVE_HEADERS))
def test_every_credential_header_is_masked_in_any_case(name):
    for variant in (name, name.upper(), name.title(), name.swapcase()):
        assert redact_headers({variant: SECRET, "Accept": "x"}) == {
            variant: HEADER_MASK,
            "Accept": "x",
        }
        assert redact_headers([(variant, SECRET)]) == {variant: HEADER_MASK}


def test_sensitive_headers_are_the_documented_ones():
    assert (
        frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
        == SENSITIVE_HEADERS
    )
    assert HEADER_MASK == "[secure]"


def test_other_headers_are_kept_as_they_are():
    headers = {"Content-Type": "text/plain", "X-Authorization-Hint": "h", "Auth": "a"}
    assert redact_headers(headers) == headers
    assert redact_headers(list(headers.items())) == headers


@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                ["Authorization", "proxy-AUTHORIZATION", "Cookie", "SET-COOKIE", "Accept", "X-Id"]
            ),
            token,
        ),
        max_size=6,
    )
)
def test_redact_headers_property(headers):
    """For any header list: sensitive names map to the mask, others keep their (last) value."""
    out = redact_headers(headers)
    assert set(out) == {k for k, _ in headers}
    for name, value in out.items():
        if name.lower() in SENSITIVE_HEADERS:
            assert value == HEADER_MASK
        else:
            assert value == [v for k, v in headers if k == name][-1]


# ------------------------------------------------------------------------------------------ text


def _u(char: str) -> str:
    """`char` as JSON `\\uXXXX` escapes (a surrogate pair above the BMP)."""
    if ord(char) > 0xFFFF:
        return json.dumps(char)[1:-1]
    return f"\\u{ord(char):04x}"


def test_every_occurrence_is_masked():
    text = f"{SECRET} and {SECRET}{SECRET} again {SECRET}"
    assert redact_text(text, [SECRET]) == f"{MASK} and {MASK}{MASK} again {MASK}"
    assert MASK == "***"


def test_every_secret_of_several_is_masked_and_empty_ones_ignored():
    assert redact_text("a-KEY b-PASS c", ["", "KEY", "PASS"]) == "a-*** b-*** c"
    assert redact_text("nothing here", []) == "nothing here"
    assert redact_text("", ["KEY"]) == ""


def test_a_secret_containing_another_is_masked_whole():
    """`key:secret` and `secret` both given: the longer one first, so no `key:` is left behind."""
    assert redact_text("auth=key:secretvalue!", ["secretvalue", "key:secretvalue"]) == "auth=***!"


def test_a_form_encoded_echo_in_an_otherwise_plain_text_is_masked():
    """A secret with a space comes back form-encoded as `+`, with no other escape in the text: the
    plain-substring shortcut must not decide that case."""
    secret = "open sesame now"
    assert redact_text("q=open+sesame+now&x=1", [secret]) == "q=***&x=1"
    assert contains_secret("q=open+sesame+now", [secret])
    assert redact_text("1+1 and open sesame now", [secret]) == "1+1 and ***"


def test_the_patterns_kept_are_bounded():
    """Patterns are built once per secret and kept, but never more than a few (each one holds a
    secret): a process that sees many secrets does not keep them all."""
    for n in range(3 * _redact._MAX_PATTERNS):
        secret = f"secret/{n:03d}"
        echo = secret.replace(
            "/", "\\/"
        )  # as JSON may send it: the pattern decides, not a substring
        assert redact_text(f"x {echo} y", [secret]) == f"x {MASK} y"
        assert 0 < len(_redact._PATTERNS) <= _redact._MAX_PATTERNS


def test_text_without_the_secret_is_unchanged():
    text = 'a JSON body {"x": "\\/\\"\\u0041"} with escapes %2F &amp;'
    assert redact_text(text, [SECRET]) == text


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(lambda s: s, id="raw"),
        pytest.param(lambda s: json.dumps(s)[1:-1], id="json"),
        pytest.param(lambda s: json.dumps(s).replace("/", "\\/")[1:-1], id="json-slash"),
        pytest.param(
            lambda s: json.dumps(json.dumps(s).replace("/", "\\/")[1:-1])[1:-1],
            id="json-in-json",
        ),
        pytest.param(
            lambda s: json.dumps(json.dumps(json.dumps(s)[1:-1])[1:-1])[1:-1], id="json-x3"
        ),
        pytest.param(lambda s: "".join(_u(c) for c in s), id="json-unicode-lower"),
        pytest.param(
            lambda s: "".join(_u(c).upper().replace("\\U", "\\u") for c in s),
            id="json-unicode-upper",
        ),
        pytest.param(
            lambda s: "".join(_u(c) if i % 2 else c for i, c in enumerate(s)),
            id="json-mixed",
        ),
        pytest.param(lambda s: urllib.parse.quote(s, safe=""), id="percent"),
        pytest.param(
            lambda s: re.sub("%..", lambda m: m[0].lower(), urllib.parse.quote(s, safe="")),
            id="percent-lower",
        ),
        pytest.param(urllib.parse.quote_plus, id="form"),
        pytest.param(html.escape, id="html"),
        pytest.param(lambda s: "".join(f"&#{ord(c)};" for c in s), id="html-decimal"),
        pytest.param(lambda s: "".join(f"&#x{ord(c):x};" for c in s), id="html-hex"),
    ],
)
@pytest.mark.parametrize("secret", [SECRET, 'a b"c\\d/é€😀', "t\tab\uffff\U00010000 x"])
def test_escaped_echoes_are_masked(echo, secret):
    """A server quoting the secret JSON-, URL- or HTML-escaped does not get it past the mask."""
    text = f"prefix {echo(secret)} suffix"
    assert redact_text(text, [secret]) == f"prefix {MASK} suffix"


@given(secret=any_secret, before=st.text(max_size=30), after=st.text(max_size=30))
def test_json_echo_property(secret, before, after):
    """For any secret, its JSON string form (ASCII-escaped or not) inside any text is masked."""
    for form in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        out = redact_text(before + form + after, [secret])
        assert form not in out
        assert secret not in out


@given(secret=token, text=st.text(max_size=60), copies=st.integers(1, 4))
def test_no_copy_survives_property(secret, text, copies):
    mixed = (text + secret) * copies + text
    assert secret not in redact_text(mixed, [secret])


# ------------------------------------------------------------------------------------------ excerpt


def test_excerpt_masks_before_it_cuts():
    """A secret straddling the 200-character limit leaves none of its characters in the excerpt."""
    body = ("x" * 195 + SECRET + " tail").encode()
    out = redact_excerpt(body, [SECRET], limit=200, cut=False)
    assert out == "x" * 195 + "***" + " t"
    assert "s3c" not in out


def test_excerpt_is_one_printable_line_of_at_most_limit_characters():
    body = b"line one\r\n\tline\x00two  \x1b[31m three\n"
    assert redact_excerpt(body, [], limit=200, cut=False) == "line one line two [31m three"
    assert redact_excerpt(body, [], limit=8, cut=False) == "line one"
    assert redact_excerpt("a\u2028b", [], limit=10, cut=False) == "a b"
    assert redact_excerpt(b"\xff\xfeok", [], limit=10, cut=False) == "\ufffd\ufffdok"


def test_excerpt_drops_the_tail_of_a_cut_body_where_a_secret_may_start():
    """The body is only its first bytes: its end may hold the first characters of a secret."""
    head = "y" * 400
    body = (head + SECRET[:5]).encode()  # the rest of the secret was beyond the bytes read
    out = redact_excerpt(body, [SECRET], limit=1000, cut=True)
    assert out == head
    assert redact_excerpt(body, [SECRET], limit=1000, cut=False) == head + SECRET[:5]
    assert redact_excerpt(body, [], limit=1000, cut=True) == head + SECRET[:5]


def test_excerpt_of_a_short_cut_body_is_empty_rather_than_leaky():
    assert redact_excerpt(SECRET[:4].encode(), [SECRET], limit=200, cut=True) == ""


def test_excerpt_masks_a_secret_holding_whitespace_after_joining_lines():
    secret = "Bearer tok3n"
    body = b"auth was Bearer\n\n   tok3n here"
    out = redact_excerpt(body, [secret], limit=200, cut=False)
    assert out == "auth was *** here"


@given(
    secret=token,
    before=st.text(max_size=300),
    after=st.text(max_size=300),
    limit=st.integers(1, 400),
    cut_at=st.integers(0, 700),
)
def test_excerpt_never_shows_a_secret_prefix_property(secret, before, after, limit, cut_at):
    """However the body is cut and truncated, no 4-character piece of the secret that was not in the
    text around it shows up in the excerpt."""
    full = (before + secret + after).encode()
    body = full[:cut_at]
    out = redact_excerpt(body, [secret], limit=limit, cut=len(body) < len(full))
    assert len(out) <= limit
    assert secret not in out
    around = before + after
    for i in range(len(secret) - 3):
        piece = secret[i : i + 4]
        if piece not in around and "*" not in piece:
            assert piece not in out.replace(MASK, "\x00")


def test_contains_secret_finds_plain_and_escaped_forms():
    assert contains_secret(f"x {SECRET} y", [SECRET])
    assert contains_secret(json.dumps(SECRET).replace("/", "\\/"), ["", SECRET])
    assert contains_secret(urllib.parse.quote(SECRET), ["other", SECRET])
    assert not contains_secret("x y", [SECRET])
    assert not contains_secret(SECRET, [])
    assert not contains_secret("", [""])


@pytest.mark.parametrize(
    ("tail", "kept"),
    [
        ("s3cr", ""),  # the start of the secret
        ("s", ""),  # even one character of it
        ('s3cr/et"Zq+=', ""),  # all of it but its last character
        ('s3cr/et"Zq+=\\u003', ""),  # and the last one cut in its escape
        ("s3\\u0063", ""),  # escaped
        ("s3\\u00", ""),  # an escape cut in the middle
        ("s3%6", ""),
        ("s3cr&#x2", ""),
        ("s3cr%2F", ""),
        ("s3crX", "s3crX"),  # not the secret after all
        ("3cr", "3cr"),  # the middle of a secret is not its start
    ],
)
def test_excerpt_drops_exactly_an_end_that_may_start_a_secret(tail, kept):
    out = redact_excerpt(("head " + tail).encode(), [SECRET], limit=100, cut=True)
    assert out == ("head " + kept).strip()
