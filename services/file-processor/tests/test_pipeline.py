"""The pipeline on real files: what is accepted, what comes out, and what is refused (and why)."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from PIL import Image

from file_processor.processing import FileRefused, Pipeline, file_id_for


async def run(pipeline: Pipeline, command: Any) -> Any:
    upload = await pipeline.load(command)
    return await pipeline.process(command, upload, file_id_for(command))


async def refusal(pipeline: Pipeline, command: Any) -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        await run(pipeline, command)
    return caught.value


def opened(store: Any, key: str) -> Image.Image:
    image = Image.open(io.BytesIO(store.get(key)))
    image.load()
    return image


async def test_profile_picture_gets_three_square_webp_variants_upright_and_without_exif(
    pipeline, uploads, store, files
):
    # 1200x800 landscape stored with orientation 6: upright it is 800x1200 portrait.
    command = uploads.put(files.jpeg_with_exif(), "me.jpg")

    processed = await run(pipeline, command)

    assert processed.sniffed.mime == "image/jpeg"
    sizes = {"thumbnail": 64, "medium": 256, "large": 512}
    assert processed.details == {"width": 800, "height": 1200, "variant_sizes": sizes}
    assert set(processed.variants) == {"thumbnail", "medium", "large"}
    for name, key in processed.variants.items():
        assert key == f"profile_pictures/u-1/{processed.file_id}/{name}.webp"
        image = opened(store, key)
        assert image.format == "WEBP"
        assert image.size == (sizes[name], sizes[name])
        assert not image.getexif()
        assert "exif" not in image.info
        assert "xmp" not in image.info
        assert b"TestCam" not in store.get(key)
    # Rotated upright, the blue left half of the stored pixels is now the top: the centre crop
    # of the large variant is red below the middle and blue above it.
    large = opened(store, processed.variants["large"]).convert("RGB")
    top, bottom = large.getpixel((256, 40)), large.getpixel((256, 470))
    assert top[2] > 150
    assert top[0] < 100
    assert bottom[0] > 150
    assert bottom[2] < 100


async def test_png_with_alpha_and_palette_gif_are_flattened_on_white(
    pipeline, uploads, store, files
):
    for data, name in ((files.png_with_alpha(), "a.png"), (files.palette_gif(), "p.gif")):
        processed = await run(pipeline, uploads.put(data, name))
        thumb = opened(store, processed.variants["thumbnail"])
        assert thumb.mode == "RGB"
        assert thumb.getpixel((0, 0)) == pytest.approx((255, 255, 255), abs=8)


async def test_webp_is_accepted_as_a_profile_picture(pipeline, uploads, files):
    processed = await run(pipeline, uploads.put(files.webp_image(), "w.webp"))
    assert processed.sniffed.mime == "image/webp"


async def test_attachment_image_keeps_a_clean_original_and_gets_a_preview(
    pipeline, uploads, store, files
):
    # A JPEG named .pdf and declared as a PDF is treated as what its bytes are: a JPEG.
    command = uploads.put(
        files.jpeg_with_exif(), "contract.pdf", "deal_attachment", content_type="application/pdf"
    )

    processed = await run(pipeline, command)

    assert processed.sniffed.mime == "image/jpeg"
    original = opened(store, processed.variants["original"])
    assert processed.variants["original"].endswith("/original.jpg")
    assert original.size == (800, 1200)
    assert not original.getexif()
    assert b"TestCam" not in store.get(processed.variants["original"])
    preview = opened(store, processed.variants["preview"])
    assert max(preview.size) == 256
    assert processed.variants["preview"].startswith(f"deal_attachments/d-1/{processed.file_id}/")


async def test_png_attachment_keeps_its_transparency(pipeline, uploads, store, files):
    processed = await run(pipeline, uploads.put(files.png_with_alpha(), "x.png", "deal_attachment"))
    original = opened(store, processed.variants["original"])
    assert original.format == "PNG"
    assert original.mode == "RGBA"
    assert original.getpixel((0, 0))[3] == 0


async def test_pdf_attachment_is_stored_with_its_page_count(pipeline, uploads, store, files):
    data = files.pdf_document(3)
    processed = await run(pipeline, uploads.put(data, "terms.pdf", "deal_attachment"))
    assert processed.details == {"pages": 3}
    assert processed.sniffed.mime == "application/pdf"
    assert store.get(processed.variants["original"]) == data


async def test_csv_attachment_is_stored_as_is(pipeline, uploads, store):
    data = b"date,amount\n2026-01-01,10.00\n"
    processed = await run(pipeline, uploads.put(data, "ledger.csv", "deal_attachment"))
    assert processed.variants["original"].endswith("/original.csv")
    assert store.get(processed.variants["original"]) == data


@pytest.mark.parametrize(
    ("maker", "name", "file_type", "reason"),
    [
        (lambda f: f.png_bomb(), "bomb.png", "profile_picture", "decompression bomb"),
        (lambda f: f.EICAR, "eicar.txt", "deal_attachment", "EICAR"),
        (lambda f: f.pdf_with_javascript(), "js.pdf", "deal_attachment", "active content"),
        (lambda f: f.encrypted_pdf(), "locked.pdf", "deal_attachment", "encrypted"),
        (
            lambda f: f.pdf_document(1),
            "cv.jpg",
            "profile_picture",
            "application/pdf is not accepted",
        ),
        (lambda f: b"MZ\x90\x00" + os.urandom(200), "setup.jpg", "profile_picture", "executable"),
        (lambda f: b"\x7fELF\x02\x01\x01" + bytes(100), "a.pdf", "deal_attachment", "executable"),
        (lambda f: b"PK\x03\x04" + bytes(100), "docs.pdf", "deal_attachment", "archives"),
        (
            lambda f: f.jpeg_with_exif((64, 64)) + b"<script>alert(1)</script>",
            "poly.jpg",
            "profile_picture",
            "polyglot",
        ),
        (lambda f: b"<html><body>hi</body></html>", "page.txt", "deal_attachment", "HTML"),
        (lambda f: b"\xff\xd8\xff\xe0" + bytes(64), "broken.jpg", "profile_picture", "jpeg"),
        (lambda f: b"hello", "hello.txt", "profile_picture", "text/plain is not accepted"),
    ],
    ids=[
        "decompression-bomb",
        "eicar",
        "pdf-javascript",
        "pdf-encrypted",
        "pdf-as-profile-picture",
        "windows-executable",
        "elf-executable",
        "zip-archive",
        "image-script-polyglot",
        "html",
        "truncated-jpeg",
        "text-as-profile-picture",
    ],
)
async def test_refused_files(pipeline, uploads, files, maker, name, file_type, reason):
    refused = await refusal(pipeline, uploads.put(maker(files), name, file_type))
    assert reason.lower() in refused.reason.lower()


async def test_pdf_names_hidden_with_hex_escapes_are_found(pipeline, uploads, files):
    data = files.pdf_with_javascript().replace(b"/JavaScript", b"/J#61vaScript")
    refused = await refusal(pipeline, uploads.put(data, "sneaky.pdf", "deal_attachment"))
    assert "active content" in refused.reason


@pytest.mark.parametrize(
    "stored_path", ["../outside.jpg", "/etc/passwd", "2026/../../outside.jpg", "link/outside.jpg"]
)
async def test_paths_outside_the_upload_directory_are_refused(
    pipeline, uploads, files, tmp_path, stored_path
):
    data = files.jpeg_with_exif((64, 64))
    (tmp_path / "outside.jpg").write_bytes(data)
    (uploads.root / "link").symlink_to(tmp_path)
    command = uploads.put(data).model_copy(update={"stored_path": stored_path})
    refused = await refusal(pipeline, command)
    assert "stored_path refused" in refused.reason


async def test_content_that_differs_from_the_command_is_refused(pipeline, uploads, files):
    command = uploads.put(files.jpeg_with_exif((64, 64)))
    wrong_sha = command.model_copy(update={"sha256": "0" * 64})
    assert "SHA-256 mismatch" in (await refusal(pipeline, wrong_sha)).reason
    wrong_size = command.model_copy(update={"size": command.size + 1})
    assert "size mismatch" in (await refusal(pipeline, wrong_size)).reason
    missing = command.model_copy(update={"stored_path": "2026/11/nothing.jpg"})
    assert "does not exist" in (await refusal(pipeline, missing)).reason


async def test_the_pixel_budget_is_configurable(pipeline, uploads, files):
    pipeline.max_image_pixels = 100 * 100
    refused = await refusal(pipeline, uploads.put(files.jpeg_with_exif((200, 200))))
    assert "decompression bomb" in refused.reason
