"""The edge's pieces without servers: negotiation parity, Referer policy, rendering, /v1/sign validation."""
from __future__ import annotations

import random
import subprocess
from pathlib import Path

import falcon
import falcon.testing
import pytest

from edge import negotiation
from edge.render import EdgeOptions, nginx_command, render
from origin.config import Settings
from origin.http import errors
from origin.http.sign import SignResource
from origin.pipeline.negotiate import choose
from origin.security.apikeys import ApiKeys
from origin.security.referers import RefererPolicy, parse_hosts
from origin.security.signing import SignatureRefused, SigningKeys, verify

BROWSERS = {
    "chrome": ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "avif"),
    "firefox": ("image/avif,image/webp,*/*", "avif"),
    "firefox_old": ("image/webp,*/*", "webp"),
    "safari17": ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
                 "image/svg+xml,image/*;q=0.8,*/*;q=0.5", "avif"),
    "safari15": ("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "webp"),
    "curl": ("*/*", "jpeg"),
    "none": (None, "jpeg"),
    "avif_refused": ("image/avif;q=0, image/webp", "webp"),
    "both_refused": ("image/avif;q=0.000,image/webp;q=0,image/*", "jpeg"),
}


@pytest.mark.parametrize("name", BROWSERS)
def test_real_accept_headers(name):
    accept, expected = BROWSERS[name]
    assert negotiation.format_class(accept) == expected == choose(accept, False)


def test_patterns_agree_with_negotiate_py_on_random_headers():
    atoms = ["image/avif", "image/webp", "IMAGE/AVIF", " image/avif ", "image/*", "*/*", "image/png",
             "image/avif+xml", "image/webpx", "", "image/jxl", "IMAGE/JXL", "image/jxl+x"]
    params = ["", ";q=0", ";q=0.0", ";q=1", ";q=0.5", "; q = 0.8", ";Q=0", ";q", ";q=", ";q=abc", ";q=-1",
              ";q=.5", ";q=1.", ";q=+.5", ";q=1e3", ";q=0e5", ";q=inf", ";q=nan", ";q=1_0", ";q=_1",
              ";level=1", ";q=0;q=1", ";q=1;q=0", ";q=0.5 x", ";x=q", ";qq=0", ";q x=1", ";q=-0"]
    rnd = random.Random(7)
    for _ in range(20_000):
        parts = [rnd.choice(atoms) + rnd.choice(params) + rnd.choice(["", rnd.choice(params)])
                 for _ in range(rnd.randint(1, 4))]
        header = rnd.choice([",", ", ", ",,"]).join(parts)
        expected = choose(header, False)
        assert negotiation.format_class(header) == expected, header


def test_referer_policy():
    policy = RefererPolicy(parse_hosts("good.example, *.friends.example"), allow_empty=False)
    assert policy.allows("https://good.example/page")
    assert policy.allows("http://GOOD.example:8443")
    assert policy.allows("https://a.b.friends.example/x?y")
    assert not policy.allows("https://friends.example/")  # *. means below it
    assert not policy.allows("https://good.example.evil.test/")
    assert not policy.allows("https://good.example@evil.test/")
    assert not policy.allows("https://evil.test/good.example")
    assert not policy.allows("")
    assert not policy.allows(None)
    assert RefererPolicy((), allow_empty=True).allows(None)
    assert RefererPolicy((), allow_empty=False).allows("https://anything.test/")
    assert not RefererPolicy((), allow_empty=True).checks_anything
    with pytest.raises(ValueError):
        parse_hosts("good.example/path")


def test_rendered_config_passes_nginx_t(tmp_path):
    settings = Settings(data_dir=tmp_path, referers="good.example,*.friends.example", allow_empty_referer=False,
                        signing_required=True, signing_keys="k2:new,k1:old")
    options = EdgeOptions(prefix=tmp_path / "edge", listen="127.0.0.1:1", origin="127.0.0.1:2",
                          plain_listen="127.0.0.1:3", edge_ttl=5)
    conf = render(settings, options)
    check = subprocess.run(nginx_command(conf, test=True), capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = conf.read_text()
    assert "proxy_cache_key $uri|$format_class$hint_key$preset_tag;" in (conf.parent / "delivery.conf").read_text()
    card = settings.named_presets.get("card")
    assert f'"~^/images/[^/?]+/card(?:\\.[a-z0-9]+)?$" "|{card.digest}";' in text  # the preset's digest in its key
    assert "$signature_refusal" in text and "127.0.0.1:3" in text
    js = (conf.parent / "js" / "edge_settings.js").read_text()
    assert '"k1": "old"' in js and (conf.parent / "js" / "edge_settings.js").stat().st_mode & 0o077 == 0


def sign_client(**overrides) -> falcon.testing.TestClient:
    settings = Settings(data_dir=Path("/nonexistent"), api_keys="key-1:alice", signing_keys="k2:new,k1:old",
                        public_base_url="https://img.example", **overrides)
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    errors.install(app)
    app.add_route("/v1/sign", SignResource(settings, ApiKeys.from_settings(settings)))
    return falcon.testing.TestClient(app)


AUTH = {"Authorization": "Bearer key-1"}


def test_sign_issues_urls_that_verify():
    resp = sign_client().simulate_post("/v1/sign", headers=AUTH,
                                       json={"paths": ["/images/abcdef/w300.webp", "/images/abcdef/sq64"],
                                             "expires_in": 60})
    assert resp.status_code == 200, resp.text
    urls = resp.json["urls"]
    assert urls[0].startswith("https://img.example/images/abcdef/w300.webp?k=k2&e=")
    path, _, query = urls[0].removeprefix("https://img.example").partition("?")
    verify(SigningKeys.parse("k1:old,k2:new"), path, dict(p.split("=", 1) for p in query.split("&")))


@pytest.mark.parametrize("body", [
    [], "x", {"paths": "/images/abcdef/w300.webp", "expires_in": 60}, {"paths": [], "expires_in": 60},
    {"paths": ["/v1/images"], "expires_in": 60}, {"paths": ["/images/abcdef/w333.webp"], "expires_in": 60},
    {"paths": ["/images/abcdef/w300.webp?x=1"], "expires_in": 60}, {"paths": [7], "expires_in": 60},
    {"paths": ["/images/abcdef/w300.webp"], "expires_in": 0},
    {"paths": ["/images/abcdef/w300.webp"], "expires_in": 366 * 86400},
    {"paths": ["/images/abcdef/w300.webp"], "expires_in": True},
    {"paths": ["/images/abcdef/w300.webp"], "expires_in": "60"},
    {"paths": ["/images/abcdef/w300.webp"]},
])
def test_sign_refuses_bad_bodies(body):
    resp = sign_client().simulate_post("/v1/sign", headers=AUTH, json=body)
    assert resp.status_code == 400 and resp.json["message"]


def test_sign_needs_an_api_key():
    client = sign_client()
    body = {"paths": ["/images/abcdef/w300.webp"], "expires_in": 60}
    assert client.simulate_post("/v1/sign", json=body).status_code == 401
    assert client.simulate_post("/v1/sign", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.simulate_post("/v1/sign", body="{not json", headers={**AUTH, "Content-Type": "application/json"}
                                ).status_code == 400


def test_a_non_ascii_signature_is_refused_not_a_crash():
    """Found by tests/test_fuzz.py: hmac.compare_digest raised TypeError (a 500) for `s=%C2%80`."""
    keys = SigningKeys.parse("k1:secret")
    with pytest.raises(SignatureRefused):
        verify(keys, "/images/abcdefgh/w300", {"k": "k1", "e": "9999999999", "s": "\x80"})


def test_an_expiry_has_one_spelling():
    """int() reads Arabic-Indic digits and leading zeros; the edge (Number) refuses both: so does the origin."""
    keys = SigningKeys.parse("k1:secret")
    for spelling in ("١٨٠٠٠٠٠٦٠٠", "01800000600", "+1800000600", " 1800000600"):
        with pytest.raises(SignatureRefused, match="malformed expiry"):
            verify(keys, "/images/abcdefgh/w300", {"k": "k1", "e": spelling, "s": "x"}, now=0)
