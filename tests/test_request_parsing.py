import pytest

from origin.errors import InvalidRequest, UnsupportedImage
from origin.ingest.sniff import sniff
from origin.pipeline import negotiate
from origin.pipeline.request import parse
from tests import images

WIDTHS = (150, 300, 600, 1200, 2400)
SIZES = (64, 150, 300)


@pytest.mark.parametrize(
    "variant, expected",
    [
        ("original", ("original", None, None)),
        ("w300.webp", ("w", 300, "webp")),
        ("w2400", ("w", 2400, None)),
        ("sq64.avif", ("sq", 64, "avif")),
        ("sm300.gif", ("sm", 300, "gif")),
    ],
)
def test_parse_accepts_the_contract(variant, expected):
    req = parse("abcdefgh", variant, WIDTHS, SIZES)
    assert (req.kind, req.size, req.fmt) == expected


@pytest.mark.parametrize(
    "image_id, variant",
    [
        ("abcdefgh", "w301.webp"),  # not on the allow-list
        ("abcdefgh", "sq2400.webp"),  # a width is not a thumbnail size
        ("abcdefgh", "w300.tiff"),  # unknown format
        ("abcdefgh", "w300.heic"),  # input-only format
        ("abcdefgh", "h300.webp"),
        ("abcdefgh", "w300.webp.jpeg"),
        ("abcdefgh", "w-300"),
        ("abcdefgh", "w0300.webp"),  # one variant, one spelling: no extra cache entries
        ("abcdefgh", "sq064"),
        ("abcdefgh", "w00150"),
        ("ab", "w300"),  # id too short
        ("abc/../x", "w300"),
        ("abc def gh", "w300"),
    ],
)
def test_parse_refuses_everything_else(image_id, variant):
    with pytest.raises(InvalidRequest):
        parse(image_id, variant, WIDTHS, SIZES)


@pytest.mark.parametrize(
    "accept, alpha, expected",
    [
        ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", False, "avif"),  # Chromium
        ("image/avif,image/webp,*/*", False, "avif"),  # Firefox
        ("image/webp,image/avif;q=0,*/*", False, "webp"),  # AVIF refused by q=0
        ("image/avif;q=0.0, image/webp;q=0.5", False, "webp"),
        ("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", False, "webp"),  # Safari 14
        ("image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", False, "jpeg"),  # old Safari: wildcards only
        ("*/*", False, "jpeg"),  # curl
        ("*/*", True, "png"),
        (None, True, "png"),
        ("", False, "jpeg"),
        ("image/webp;q=0", True, "png"),
        ("IMAGE/AVIF", False, "avif"),
        ("image/avif;q=abc", False, "jpeg"),
    ],
)
def test_negotiation(accept, alpha, expected):
    assert negotiate.choose(accept, alpha) == expected


@pytest.mark.parametrize(
    "data, expected",
    [
        (images.jpeg(), "jpeg"),
        (images.png_with_alpha(), "png"),
        (images.animated_gif(), "gif"),
        (images.hevc_heic(64, 48), "heic"),
    ],
)
def test_sniff_reads_magic_bytes(data, expected):
    assert sniff(data[:64]) == expected


def test_sniff_knows_webp_and_avif():
    import pyvips

    small = pyvips.Image.black(16, 16, bands=3)
    assert sniff(small.webpsave_buffer()[:64]) == "webp"
    assert sniff(small.heifsave_buffer(compression="av1")[:64]) == "avif"


@pytest.mark.parametrize("data", [b"", b"hello world", b"<?php echo 1; ?>", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"])
def test_sniff_refuses_non_images(data):
    with pytest.raises(UnsupportedImage):
        sniff(data)
