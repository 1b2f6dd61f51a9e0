"""Media: fetched without SSRF, typed by its bytes, images compressed, stored and recorded."""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from PIL import Image, ImageStat

from wacast.campaign_service.adapters.fetch import Allowlist, Fetcher, UrlRefused
from wacast.campaign_service.adapters.images import compress
from wacast.campaign_service.adapters.objects import MediaObjects
from wacast.campaign_service.adapters.sniff import UnknownType, sniff
from wacast.contracts import commands as cmd
from wacast.contracts.media import MediaStored
from wacast.contracts.streams import MEDIA

from .conftest import TENANT, Harness

PUBLIC = "93.184.216.34"
NAMES = {
    "cdn.example.com": [PUBLIC],
    "rebind.example.com": ["127.0.0.1"],
    "mixed.example.com": [PUBLIC, "10.1.2.3"],
}


async def resolve(host: str, port: int) -> list[str]:
    return NAMES.get(host, [host])


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def web(request: httpx.Request) -> httpx.Response:
    """A small web: one image (served as text/html: the header lies), and redirects."""
    host, path = request.headers["host"], request.url.path
    if host == "cdn.example.com" and path == "/photo":
        return httpx.Response(200, content=png(), headers={"content-type": "text/html"})
    if path.startswith("/to/"):
        return httpx.Response(302, headers={"location": "http://" + path[4:] + "/secret"})
    return httpx.Response(404)


def fetcher(allow: list[str] | None = None) -> Fetcher:
    return Fetcher(
        Allowlist.parse(allow or []), transport=httpx.MockTransport(web), resolver=resolve
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://rebind.example.com/x",
        "http://mixed.example.com/x",
        "file:///etc/passwd",
        "ftp://cdn.example.com/x",
    ],
)
async def test_the_guard_refuses_urls_that_reach_private_loopback_or_metadata_addresses(
    url: str,
) -> None:
    with pytest.raises(UrlRefused):
        await fetcher().fetch(url, lambda head: 10_000_000)


@pytest.mark.parametrize("target", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]"])
async def test_a_redirect_to_a_private_address_is_refused_at_that_hop(target: str) -> None:
    with pytest.raises(UrlRefused):
        await fetcher().fetch(f"http://cdn.example.com/to/{target}", lambda head: 10_000_000)


async def test_the_allowlist_lets_a_listed_host_or_network_through() -> None:
    guard = fetcher(["rebind.example.com", "10.0.0.0/8"])
    target, host = await guard.check("http://rebind.example.com/photo")
    assert (str(target.host), host) == ("127.0.0.1", "rebind.example.com")
    target, _ = await guard.check("http://10.9.8.7/photo")
    assert str(target.host) == "10.9.8.7"


async def test_a_fetch_connects_to_the_checked_address_and_types_by_the_bytes() -> None:
    fetched = await fetcher().fetch("https://cdn.example.com/photo", lambda head: 10_000_000)
    with fetched.body:
        body = fetched.body.read()
    assert sniff(fetched.head).mime == "image/png"
    assert body == png()


def test_the_type_comes_from_the_bytes_not_the_name() -> None:
    assert sniff(png(), "invoice.pdf").mime == "image/png"
    assert sniff(b"%PDF-1.7\n...", "photo.jpg").mime == "application/pdf"
    assert sniff(b"\x00\x00\x00\x18ftypmp42" + bytes(100)).mime == "video/mp4"
    assert sniff(b"name,phone\nAna,+1415\n", "leads.csv").mime == "text/csv"
    with pytest.raises(UnknownType):
        sniff(bytes(range(256)) * 4, "x.jpg")


def noisy_photo() -> bytes:
    """A 4000x3000 photo-like image (gradients and noise) of more than 5 MB."""
    base = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.effect_noise((4000, 3000), 48)
    red, green = Image.blend(base, noise, 0.35), Image.blend(base.rotate(180), noise, 0.3)
    image = Image.merge("RGB", (red, green, Image.new("L", (4000, 3000), 90)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_a_5_mb_photo_is_compressed_under_350_kb_and_stays_recognisable() -> None:
    original = noisy_photo()
    assert len(original) > 5_000_000

    result = compress(original, target_bytes=350_000, max_side=1600)

    assert len(result.data) <= 350_000
    assert (result.width, result.height) == (1600, 1200)
    with Image.open(io.BytesIO(result.data)) as small, Image.open(io.BytesIO(original)) as big:
        assert small.size == (1600, 1200)
        before = ImageStat.Stat(big.convert("RGB")).mean
        after = ImageStat.Stat(small.convert("RGB")).mean
    assert all(abs(a - b) < 4 for a, b in zip(before, after, strict=True))


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    image = Image.new("RGB", (400, 200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 200, 200))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left half is on top
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)

    result = compress(out.getvalue(), target_bytes=350_000, max_side=1600)

    with Image.open(io.BytesIO(result.data)) as upright:
        assert upright.size == (200, 400)
        top, bottom = upright.getpixel((100, 50)), upright.getpixel((100, 350))
        assert not upright.getexif().get(0x0112)
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert (top[0] > 200, top[2] < 60) == (True, True)
    assert (bottom[2] > 200, bottom[0] < 60) == (True, True)


def test_transparency_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (40, 40, 60, 60))
    out = io.BytesIO()
    image.save(out, "PNG")

    result = compress(out.getvalue(), target_bytes=350_000, max_side=1600)

    with Image.open(io.BytesIO(result.data)) as flat:
        corner, centre = flat.getpixel((2, 2)), flat.getpixel((50, 50))
    assert isinstance(corner, tuple)
    assert isinstance(centre, tuple)
    assert min(corner) > 245
    assert max(centre) < 20


async def test_an_upload_is_stored_compressed_and_recorded_and_its_staging_deleted(
    harness: Harness,
) -> None:
    replica = await harness.start()
    objects = MediaObjects(harness.nc.jetstream(), harness.topology)
    await objects.put(f"uploads/{TENANT}/big.jpg", noisy_photo())

    reply = await replica.send(
        cmd.IngestMedia(tenant_id=TENANT, staged_object=f"uploads/{TENANT}/big.jpg")
    )

    assert reply.ok, reply.problem
    assert (reply.data["kind"], reply.data["mime"]) == ("image", "image/jpeg")
    assert reply.data["bytes"] <= 350_000
    [stored] = await harness.events(MEDIA, harness.topology.media(TENANT, reply.id))
    assert isinstance(stored, MediaStored)
    assert stored.object_name == f"media/{TENANT}/{reply.id}"
    assert await objects.size(stored.object_name) == stored.bytes
    assert await objects.size(f"uploads/{TENANT}/big.jpg") is None


async def test_a_video_is_stored_as_it_is_and_a_too_large_one_is_refused(harness: Harness) -> None:
    replica = await harness.start(video_max_bytes=2_000_000)
    objects = MediaObjects(harness.nc.jetstream(), harness.topology)
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(1_000_000)
    await objects.put(f"uploads/{TENANT}/clip.mp4", clip)
    await objects.put(f"uploads/{TENANT}/long.mp4", clip * 3)

    ok = await replica.send(
        cmd.IngestMedia(tenant_id=TENANT, staged_object=f"uploads/{TENANT}/clip.mp4")
    )
    big = await replica.send(
        cmd.IngestMedia(tenant_id=TENANT, staged_object=f"uploads/{TENANT}/long.mp4")
    )

    assert ok.ok, ok.problem
    [stored] = await harness.events(MEDIA, harness.topology.media(TENANT, ok.id))
    assert isinstance(stored, MediaStored)
    assert (stored.kind, stored.mime, stored.filename) == ("video", "video/mp4", "clip.mp4")
    assert stored.sha256 == hashlib.sha256(clip).hexdigest()
    assert big.problem is not None
    assert (big.problem.code, big.problem.status) == ("media_too_large", 413)


async def test_a_url_is_fetched_through_the_guard_by_the_service(harness: Harness) -> None:
    replica = await harness.start(transport=httpx.MockTransport(web), resolver=resolve)

    fetched = await replica.send(
        cmd.IngestMedia(tenant_id=TENANT, url="https://cdn.example.com/photo")
    )
    private = await replica.send(cmd.IngestMedia(tenant_id=TENANT, url="http://10.0.0.1/photo"))

    assert fetched.ok, fetched.problem
    assert fetched.data["mime"] == "image/jpeg"
    [stored] = await harness.events(MEDIA, harness.topology.media(TENANT, fetched.id))
    assert isinstance(stored, MediaStored)
    assert (stored.source, stored.source_url) == ("url", "https://cdn.example.com/photo")
    assert private.problem is not None
    assert (private.problem.code, private.problem.status) == ("url_not_allowed", 422)
