"""Hostile input, fuzzed with hypothesis (bounded: CI runs a fixed, derandomized sample; `make fuzz`
runs many more, with fresh randomness).

    URL grammar      parse() answers a VariantRequest or InvalidRequest, nothing else; what it accepts
                     is the one canonical spelling, and the edge's allow-list agrees with it
    Accept           the origin's rule and the edge's patterns pick the same class for any header
    signatures       no forgery is accepted, garbage is a SignatureRefused, never another exception
    header parsers   mutated real headers (JPEG, PNG, GIF, WebP, HEIC, AVIF, JPEG XL): a result or the typed
                     refusal, never another exception, never a hang past a bound
"""
from __future__ import annotations

import json
import os
import re
import signal
import string
from contextlib import contextmanager
from functools import lru_cache

import pytest
import pyvips
from hypothesis import HealthCheck, example, given, settings, strategies as st

from edge import allowlist, negotiation
from origin import presets
from origin.errors import InvalidRequest, UnsupportedImage
from origin.ingest import originals
from origin.formats import OUTPUT_FORMATS
from origin.ingest.validate import Limits, Rejected, Validated, validate
from origin.keys import check_id
from origin.pipeline.negotiate import choose
from origin.pipeline.request import VariantRequest, parse
from origin.security.signing import SignatureRefused, SigningKeys, sign_path, signature, verify
from tests import images

WIDTHS = (150, 300, 600, 1200, 2400)
SIZES = (64, 150, 300)
EXAMPLES = int(os.environ.get("IMAGEHOST_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("IMAGEHOST_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow], database=None)
ID_CHARS = string.ascii_letters + string.digits + "_-"
PRESETS = presets.parse("card=fill 800x450 smart, hero-2=fit 2400x1600, content=width 800")
EDGE_PATH = re.compile(allowlist.variant_path(WIDTHS, SIZES, end=allowlist.PYTHON_END, presets=PRESETS.names))
EDGE_REFUSALS = allowlist.refusals(WIDTHS, SIZES, presets=PRESETS.names, end=allowlist.PYTHON_END)


def edge_refusal(path: str) -> dict:
    """The body the edge answers a refused `path` with (the first rule that matches, as nginx picks)."""
    for refusal in EDGE_REFUSALS:
        match = re.match(refusal.pattern, path)
        if match:
            return json.loads(match.expand(allowlist.body(refusal)) if refusal.pattern else allowlist.body(refusal))
    raise AssertionError("the last rule matches everything")


@contextmanager
def bounded(seconds: float):
    """Raise TimeoutError if the block runs longer than `seconds` (a hang is a failure, not a wait)."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the delivery URL grammar -------------------------------------------------------------------

pieces = st.sampled_from(["w", "sq", "sm", "original", ".", "0", "00", "150", "300", "64", "2400", "301",
                          "999999", "1" * 7, "webp", "avif", "jpeg", "png", "gif", "heic", "tiff", "jxl", "\n",
                          " ", "%", "/", "..", "\x00", "W", "é", "+", "-", "_", "card", "hero-2", "hero", "Card",
                          "content", "auto"])
variants = st.one_of(st.lists(pieces, max_size=6).map("".join), st.text(max_size=20))
ids = st.one_of(st.text(ID_CHARS, min_size=6, max_size=64), st.text(max_size=70))


def origin_takes_id(image_id: str) -> bool:
    try:
        check_id(image_id)
    except InvalidRequest:
        return False
    return True


@FUZZ
@given(image_id=ids, variant=variants)
@example(image_id="abcdefgh", variant="w300\n")  # `$` matched before a trailing newline
@example(image_id="abcdefgh\n", variant="w300")
@example(image_id="abcdefgh", variant="w0300.webp")
@example(image_id="abcdefgh", variant="placeholder")
@example(image_id="abcdefgh", variant="placeholder.png")
@example(image_id="abcdefgh", variant="w00.jxl")
@example(image_id="abcdefgh", variant="sm0")
@example(image_id="abcdefgh", variant="hero-2.tiff")
@example(image_id="abcdefgh", variant="w601.bmp")
def test_the_url_grammar_answers_a_request_or_a_typed_refusal(image_id, variant):
    refused = None
    if variant == "placeholder":  # a route of its own (origin/http/placeholder.py): only the id is checked
        accepted = origin_takes_id(image_id)
    else:
        try:
            req = parse(image_id, variant, WIDTHS, SIZES, PRESETS)
        except InvalidRequest as exc:
            accepted, refused = False, {"error": exc.code, "message": exc.message, **exc.details}
        else:
            accepted = True
            assert isinstance(req, VariantRequest)
            spelled = (req.preset.name if req.preset else req.name) + (f".{req.fmt}" if req.fmt else "")
            assert spelled == variant  # one spelling per variant: nothing else becomes a cache entry
            assert req.kind in ("original", "auto", "preset") or req.size in (WIDTHS if req.kind == "w" else SIZES)
            assert req.kind != "preset" or req.preset is PRESETS.get(req.preset.name)
            assert req.fmt is None or req.fmt in OUTPUT_FORMATS
    if "/" not in image_id and "/" not in variant:
        path = f"/images/{image_id}/{variant}"
        edge_accepts = EDGE_PATH.match(path) is not None
        assert edge_accepts == accepted, (image_id, variant)  # the edge refuses exactly what the origin refuses
        if refused:  # and says why in the origin's words, with the same lists (the origin also echoes the input)
            said = edge_refusal(path)
            assert said == {key: refused[key] for key in said} and said.keys() | {"variant", "image_id"} >= refused.keys(), \
                (said, refused)


# --- Accept: the origin's rule and the edge's map -----------------------------------------------

accept_atoms = st.sampled_from(["image/avif", "image/webp", "IMAGE/AVIF", "image/*", "*/*", "image/png",
                                "image/jxl", "image/webpx", " ", "", "q", "=", ";", ",", "0", "1", ".", "5",
                                "e", "-", "+", "_", "nan", "inf", "\t", "\x00", "é"])
accepts = st.one_of(st.lists(accept_atoms, max_size=12).map("".join), st.text(max_size=60), st.none())


@FUZZ
@given(header=accepts)
@example(header="image/avif;q=0.0001,image/webp")
@example(header="image/avif;q=nan,image/avif;q=1")
def test_the_edge_and_the_origin_pick_the_same_format_class(header):
    with bounded(2.0):  # the patterns are regular expressions: no input may make them backtrack for long
        edge = negotiation.format_class(header)
    assert edge == choose(header, False)
    assert choose(header, True) in ("avif", "jxl", "webp", "png")  # an image with alpha: never JPEG


# --- signatures ---------------------------------------------------------------------------------

KEYS = SigningKeys.parse("k1:first-secret,k2:second-secret")
NOW = 1_800_000_000
# what a request can carry: decoded UTF-8 (falcon replaces what does not decode), so no lone surrogates
http_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=50)


@FUZZ
@given(path=http_text, kid=st.one_of(st.none(), http_text, st.sampled_from(["k1", "k2"])),
       expires=st.one_of(st.none(), http_text, st.integers(-2**70, 2**70).map(str)),
       sig=st.one_of(st.none(), http_text))
@example(path="/images/abcdefgh/w300", kid="k1", expires="1800000600", sig="\x80")  # was a TypeError (500)
@example(path="/images/abcdefgh/w300", kid="k1", expires="١٨٠٠٠٠٠٦٠٠", sig="x")  # int() reads these digits
def test_garbage_signatures_are_refused_with_the_typed_error(path, kid, expires, sig):
    params = {name: value for name, value in (("k", kid), ("e", expires), ("s", sig)) if value is not None}
    try:
        verify(KEYS, path, params, now=NOW)
    except SignatureRefused:
        return
    # accepted: then it is exactly the MAC of this path and expiry under that key, and not expired
    secret = KEYS.secret(kid)
    assert secret is not None and int(expires) >= NOW and sig == signature(secret, path, int(expires))


@FUZZ
@given(path=http_text.filter(bool), position=st.integers(0, 1000),
       replacement=st.characters(blacklist_categories=("Cs",)),
       part=st.sampled_from(["path", "e", "s", "k"]))
def test_no_altered_signed_url_is_accepted(path, position, replacement, part):
    signed = sign_path(KEYS, path, 600, now=NOW)
    params = dict(re.findall(r"([kes])=([^&]*)", signed.rpartition("?")[2]))
    target = path if part == "path" else params[part]
    at = position % len(target)
    altered = target[:at] + replacement + target[at + 1:]
    if altered == target:
        return
    if part == "path":
        path = altered
    else:
        params[part] = altered
    with pytest.raises(SignatureRefused):
        verify(KEYS, path, params, now=NOW)


# --- header-only parsers on mutated real headers -------------------------------------------------

@lru_cache(maxsize=None)
def seeds() -> dict[str, bytes]:
    scene = pyvips.Image.new_from_buffer(images.jpeg(images.scene(96, 64)), "")
    frames = pyvips.Image.arrayjoin([scene, scene.flip("horizontal"), scene.invert()], across=1)
    frames = frames.copy()
    frames.set_type(pyvips.GValue.gint_type, "page-height", 64)
    return {
        "jpeg": images.PHOTOS[0].read_bytes()[:65536],  # a real camera JPEG's header: APPn, EXIF, tables
        "jpeg_exif": images.gps_jpeg(),
        "png": images.png_with_alpha(64, 48),
        "gif": images.animated_gif(3, 48, 32),
        "webp": scene.webpsave_buffer(Q=70),
        "webp_lossless": scene.webpsave_buffer(lossless=True),
        "webp_animated": frames.webpsave_buffer(Q=60),
        "heic": images.hevc_heic(128, 96),
        "avif": scene.heifsave_buffer(compression="av1", effort=0, Q=40),
        "jxl": images.jxl(96, 64),
        "jxl_container": images.jxl_from_jpeg(images.jpeg(images.scene(96, 64))),
    }


@st.composite
def mutated(draw, kinds: str = ""):
    """A seed whose name starts with `kinds` (any seed: ""), mutated near its start."""
    name = draw(st.sampled_from(sorted(n for n in seeds() if n.startswith(kinds))))
    data = bytearray(seeds()[name])
    reach = min(len(data), 600)  # the header lives in the first bytes: mutate there mostly
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "u32"]))
        at = draw(st.integers(0, reach - 1))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:  # a length or a dimension field gone wild
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                    b"\x00\x00\x00\x01", b"\x80\x00\x00\x00"]))
        reach = max(1, min(len(data), 600))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return name, bytes(data)


LIMITS = Limits()


@FUZZ
@given(case=mutated())
def test_header_parsers_answer_a_result_or_the_typed_refusal(case):
    name, data = case
    with bounded(2.0):
        try:
            result = validate(data, LIMITS, decode=False)
        except Rejected as exc:
            assert exc.reason in ("unsupported_type", "too_large", "too_many_pixels", "side_too_long",
                                  "too_many_frames", "corrupt")
            return
    assert isinstance(result, Validated)
    assert 0 < result.width and 0 < result.height and result.width * result.height <= LIMITS.max_pixels
    assert 1 <= result.frames <= LIMITS.max_frames


@FUZZ
@given(case=mutated("jxl"))
def test_a_damaged_jpeg_xl_makes_a_master_or_a_typed_refusal(case):
    """libjxl's decode (the master, originals.prepare) on what passed the header checks: a master of the
    declared size, or UnsupportedImage; never another exception, never a hang."""
    _, data = case
    try:
        checked = validate(data, LIMITS, decode=False)
    except Rejected:
        return
    with bounded(5.0):
        try:
            decoded = originals.prepare(data, checked.fmt)
        except UnsupportedImage:
            return
    assert {decoded.header.width, decoded.header.height} == {checked.width, checked.height}
    assert decoded.master


def test_the_seeds_themselves_validate():
    for name, data in seeds().items():
        assert validate(data, LIMITS, decode=False).width > 0, name
