"""Client hints at both edges (edge/hints.js, edge/hints.py's VCL): many hint values, few cache entries.

/images/{id}/auto is keyed on the width class the hints fold into, next to the format class; the
origin is sent only the canonical `Sec-CH-Width: {class}` (its access log shows the hint headers it
got); Content-DPR is this client's, hits included; a purge removes every /auto entry; signed /auto
URLs stay valid whatever hints ride along, because the hints can only pick an allowed width.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import replace

import pytest
import requests

from origin.config import Settings
from origin.pipeline import hints
from origin.ports.cdn_nginx import EdgePurger
from origin.security.signing import SigningKeys, sign_path
from tests import images
from tests.servers import start_edge, start_edge_origin, stop
from tests.test_edge_units import BROWSERS
from tests.test_edge_varnish import HAVE_VARNISH, start_varnish

pytestmark = pytest.mark.slow
WIDTHS = Settings().widths
PHOTO_WIDTH = 2560
VARY = "Accept, Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width"
KEYS = SigningKeys.parse("k1:hint-secret")
LOG_FORMAT = "%(r)s w=%({sec-ch-width}i)s dpr=%({sec-ch-dpr}i)s vw=%({sec-ch-viewport-width}i)s"


def hint_sets() -> list[dict]:
    """40 distinct client-hint header sets: widths, viewports × DPRs, and values that do not parse."""
    sets = [{"Sec-CH-Width": str(w)} for w in (1, 100, 150, 151, 299, 300, 301, 450, 600, 601, 999, 1200,
                                                  1201, 2000, 2400, 2401, 5000)]
    sets += [{"Sec-CH-Width": "640", "Sec-CH-DPR": "2"}, {"Sec-CH-Width": "900", "Sec-CH-DPR": "3"}]
    for viewport, dpr in ((320, "1"), (320, "2"), (360, "3"), (375, "2"), (390, "3"), (412, "2.625"),
                          (768, "1.5"), (1024, "2"), (1280, "1"), (1440, "1.25"), (1920, "1"), (2560, "2")):
        sets.append({"Sec-CH-Viewport-Width": str(viewport), "Sec-CH-DPR": dpr})
    sets += [{"Sec-CH-Viewport-Width": "800"}, {}, {"Sec-CH-Width": "wide"}, {"Sec-CH-Width": "-300"},
             {"Sec-CH-Width": "1e3"}, {"Sec-CH-DPR": "2"}, {"Sec-CH-Viewport-Width": "400", "Sec-CH-DPR": "x"},
             {"Sec-CH-Width": "300 ", "Sec-CH-DPR": "1.5"}, {"Sec-CH-Width": "0"}]
    assert len(sets) == 40 and len({json.dumps(s, sort_keys=True) for s in sets}) == 40
    return sets


def expected_width(headers: dict) -> tuple[int, hints.Hints]:
    parsed = hints.parse(headers.get("Sec-CH-Width"), headers.get("Sec-CH-DPR"), headers.get("Sec-CH-Viewport-Width"))
    return min(hints.width_class(parsed, WIDTHS, Settings().auto_width), PHOTO_WIDTH), parsed


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("hints-edge")
    env = {"IMAGEHOST_ACCESS_LOG": str(root / "origin-access.log"), "IMAGEHOST_MISS_BUDGET_MS": "0",
           "GUNICORN_CMD_ARGS": f"--access-logformat '{LOG_FORMAT}'"}
    origin = start_edge_origin(root / "var", env, workers=2)
    settings = Settings.from_env(origin.env)
    port = int(origin.url.rsplit(":", 1)[1])
    signed = replace(settings, signing_required=True, signing_keys="k1:hint-secret")
    nginx = [start_edge(settings, port, root / "nginx"), start_edge(signed, port, root / "nginx-signed")]
    edges = {"nginx": nginx[0].url, "nginx-signed": nginx[1].url}
    procs = [edge.proc for edge in nginx]
    if HAVE_VARNISH:
        for name, config in (("varnish", settings), ("varnish-signed", signed)):
            (root / name).mkdir()
            edges[name], proc = start_varnish(config, origin, root / name)
            procs.append(proc)
    result = origin.ingest(*images.PHOTOS)
    assert result.returncode == 0, result.stderr
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    yield origin, edges, ids, root
    for proc in procs:
        stop(proc)
    stop(origin.proc)


def origin_lines(origin, path: str, settled: int = 0) -> list[str]:
    """The origin's access-log lines for `path` (gunicorn writes one just after answering)."""
    log = origin.data_dir.parent / "origin-access.log"
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in (log.read_text() if log.exists() else "").splitlines() if f" {path} " in line]
        if len(lines) >= settled or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def cache_files(root, edge: str) -> int:
    return sum(1 for p in (root / edge / "cache").rglob("*") if p.is_file())


def fold(origin, base: str, image_id: str, query: str = "") -> dict:
    """Every hint set under two format classes; checks each answer; {(width, format): statuses}."""
    path = f"/images/{image_id}/auto"
    before = len(origin_lines(origin, path))
    seen: dict = {}
    for browser in ("firefox_old", "curl"):
        accept, fmt = BROWSERS[browser]
        for headers in hint_sets():
            resp = requests.get(base + path + query, headers={"Accept": accept, **headers}, timeout=60)
            assert resp.status_code == 200, resp.text
            width, parsed = expected_width(headers)
            assert resp.headers["Content-Type"] == f"image/{fmt}"
            assert int(resp.headers["X-Image-Width"]) == images.size(resp.content)[0] == width, headers
            assert resp.headers["Vary"] == VARY
            assert resp.headers.get("Content-DPR") == hints.content_dpr(width, parsed), headers  # hits too
            seen.setdefault((width, fmt), []).append(resp.headers["X-Cache-Status"])
    for key, statuses in seen.items():
        assert statuses == ["MISS"] + ["HIT"] * (len(statuses) - 1), key
    assert {width for width, _ in seen} == set(WIDTHS)  # every class was reached
    lines = origin_lines(origin, path, settled=before + len(seen))[before:]
    assert len(lines) == len(seen)  # one origin request per class, whatever the hint values
    for line in lines:  # and it saw the canonical hint only: the class width, nothing else
        assert any(line.endswith(f" w={w} dpr=- vw=-") for w in WIDTHS), line
    return seen


def test_forty_hint_values_make_one_nginx_entry_per_width_and_format_class(stack):
    origin, edges, ids, root = stack
    before = cache_files(root, "nginx")
    seen = fold(origin, edges["nginx"], ids[0])
    assert len(seen) == len(WIDTHS) * 2
    assert cache_files(root, "nginx") - before == len(seen)
    print(f"\nnginx: {len(hint_sets())} hint sets x 2 format classes = {2 * len(hint_sets())} requests"
          f" -> {len(seen)} cache entries, {len(seen)} origin requests")


def test_forty_hint_values_make_one_varnish_object_per_width_and_format_class(stack):
    origin, edges, ids, root = stack
    if "varnish" not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    seen = fold(origin, edges["varnish"], ids[1])
    assert len(seen) == len(WIDTHS) * 2
    print(f"\nvarnish: {2 * len(hint_sets())} requests -> {len(seen)} objects")


def random_hints(rng: random.Random) -> dict:
    widths = [lambda: str(rng.randint(0, 3000)), lambda: str(rng.randint(0, 999_999)),
              lambda: "0" + str(rng.randint(0, 999)), lambda: str(rng.randint(1, 999)) + " ",
              lambda: rng.choice(["", "abc", "12.5", "-3", "1234567", "1,2", "0x10", "1_000"])]
    dprs = [lambda: f"{rng.randint(0, 4)}.{rng.randint(0, 999):0{rng.randint(1, 3)}d}",
            lambda: str(rng.randint(0, 12)), lambda: rng.choice(["0.75", "2.625", "99.999", "1.2345", ".5",
                                                                    "2.", "abc", "100", "0.000", "1.5 "])]
    headers = {}
    if rng.random() < 0.5:
        headers["Sec-CH-Width"] = rng.choice(widths)()
    if rng.random() < 0.7:
        headers["Sec-CH-DPR"] = rng.choice(dprs)()
    if rng.random() < 0.6:
        headers["Sec-CH-Viewport-Width"] = rng.choice(widths)()
    return headers


@pytest.mark.parametrize("edge", ["nginx", "varnish"])
def test_the_edges_fold_random_hints_as_the_origin_rule_does(stack, edge):
    """njs and VCL against origin/pipeline/hints.py: the width and this client's Content-DPR."""
    origin, edges, ids, root = stack
    if edge not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    rng = random.Random(12)
    path = f"/images/{ids[0]}/auto.jpeg"
    misses = 0
    for _ in range(300):
        headers = random_hints(rng)
        resp = requests.get(edges[edge] + path, headers=headers, timeout=60)
        assert resp.status_code == 200, (headers, resp.text)
        width, parsed = expected_width(headers)
        assert int(resp.headers["X-Image-Width"]) == width, headers
        assert resp.headers.get("Content-DPR") == hints.content_dpr(width, parsed), headers
        misses += resp.headers["X-Cache-Status"] == "MISS"
    assert misses <= len(WIDTHS)


@pytest.mark.parametrize("edge", ["nginx", "varnish"])
def test_hints_do_not_split_other_paths(stack, edge):
    origin, edges, ids, root = stack
    if edge not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    path = f"/images/{ids[2]}/w300.webp"
    before = len(origin_lines(origin, path))
    statuses = []
    for headers in hint_sets()[:12]:
        resp = requests.get(edges[edge] + path, headers=headers, timeout=60)
        assert resp.status_code == 200 and "Content-DPR" not in resp.headers and images.size(resp.content)[0] == 300
        statuses.append(resp.headers["X-Cache-Status"])
    assert statuses == ["MISS"] + ["HIT"] * 11
    lines = origin_lines(origin, path, settled=before + 1)[before:]
    assert len(lines) == 1 and lines[0].endswith(" w=- dpr=- vw=-")


def test_nginx_purge_removes_every_auto_entry(stack):
    origin, edges, ids, root = stack
    base = edges["nginx"]
    image_id = ids[2]
    paths = [(f"/images/{image_id}/auto", {"Sec-CH-Width": str(w)}) for w in WIDTHS]
    paths += [(f"/images/{image_id}/auto.avif", {"Sec-CH-Viewport-Width": "300", "Sec-CH-DPR": "2"}),
              (f"/images/{image_id}/auto.png", {})]
    for path, headers in paths:
        requests.get(base + path, headers=headers, timeout=60)
        assert requests.get(base + path, headers=headers, timeout=60).headers["X-Cache-Status"] == "HIT"
    before = cache_files(root, "nginx")
    purged = requests.post(f"{base}/purge/images/{image_id}", timeout=10).json()
    assert purged["removed"] >= len(paths) + 1  # + the w300.webp of the test before, when it ran
    assert cache_files(root, "nginx") == before - purged["removed"]
    for path, headers in paths:
        assert requests.get(base + path, headers=headers, timeout=60).headers["X-Cache-Status"] == "MISS", path


def test_varnish_ban_removes_every_auto_object(stack):
    origin, edges, ids, root = stack
    if "varnish" not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    base = edges["varnish"]
    paths = [(f"/images/{ids[2]}/auto", {"Sec-CH-Width": str(w)}) for w in WIDTHS]
    paths.append((f"/images/{ids[2]}/auto.webp", {"Sec-CH-DPR": "2", "Sec-CH-Viewport-Width": "500"}))
    for path, headers in paths:
        requests.get(base + path, headers=headers, timeout=60)
        assert requests.get(base + path, headers=headers, timeout=60).headers["X-Cache-Status"] == "HIT"
    purger = EdgePurger([base], origin.data_dir / "cdn-varnish", start=False)
    purger.purge(ids[2])
    assert purger.pending() == []
    for path, headers in paths:
        assert requests.get(base + path, headers=headers, timeout=60).headers["X-Cache-Status"] == "MISS", path


@pytest.mark.parametrize("edge", ["nginx-signed", "varnish-signed"])
def test_a_signed_auto_url_stays_valid_and_cached_whatever_the_hints(stack, edge):
    origin, edges, ids, root = stack
    if edge not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    base = edges[edge]
    path = f"/images/{ids[1]}/auto.webp"
    signed = sign_path(KEYS, path, 300)
    seen = {}
    for headers in hint_sets():
        resp = requests.get(base + signed, headers=headers, timeout=60)
        assert resp.status_code == 200, resp.text
        width, _ = expected_width(headers)
        assert images.size(resp.content)[0] == width
        seen.setdefault(width, []).append(resp.headers["X-Cache-Status"])
    assert all(statuses[0] == "MISS" and set(statuses[1:]) <= {"HIT"} for statuses in seen.values())
    assert len(seen) == len(WIDTHS)
    unsigned = requests.get(base + path, headers={"Sec-CH-Width": "600"}, timeout=60)
    assert unsigned.status_code == 403 and unsigned.json()["error"] == "bad_signature"
    other = sign_path(KEYS, f"/images/{ids[1]}/auto.avif", 300)  # a signature names its path, format included
    assert requests.get(base + signed.replace("auto.webp", "auto.avif"), timeout=60).status_code == 403
    assert requests.get(base + other, headers={"Sec-CH-Width": "150"}, timeout=60).status_code == 200


@pytest.mark.parametrize("edge", ["nginx", "varnish"])
@pytest.mark.parametrize("variant", ["auto.tiff", "autox", "auto.", "auto600", "auto%0A"])
def test_auto_off_the_allow_list_is_refused_at_the_edge(stack, edge, variant):
    origin, edges, ids, root = stack
    if edge not in edges:
        pytest.skip("needs Debian's varnish and varnish-vmod-digest")
    resp = requests.get(f"{edges[edge]}/images/{ids[0]}/{variant}", timeout=30)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request", resp.text
