"""Profile-picture processing: the file-processor's pipeline against naive Pillow.

Both sides get the same generated 3000x2000 JPEGs (camera-sized photos, the common upload).

- pipeline: what the service does per image — locate, size and SHA-256 check, sniff, built-in
  scan, decode with ``draft()`` (JPEG DCT scaling straight to the size the largest variant
  needs), EXIF orientation, three square WebP variants, written to a file store — on its thread
  pool, two images at a time (the default ``PRS_FILE_IMAGE_WORKERS``);
- naive: open, full decode, three LANCZOS resizes from the full image, JPEG save; one at a
  time, and also two at a time on threads to separate the gain of ``draft()`` from that of
  concurrency.

Run on its own: ``python -m bench.files [n]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from file_processor.imaging import naive_profile_variants
from file_processor.processing import Pipeline, file_id_for
from file_processor.scanning import BuiltinScanner
from prs_shared.messaging.files import ProcessFile
from prs_shared.storage import LocalFileStore

SIZE = (3000, 2000)
DISTINCT = 4
CONCURRENCY = 2


def photo(seed: int) -> bytes:
    """A photo-like JPEG: gradients plus noise, so it neither compresses nor decodes trivially."""
    w, h = SIZE
    base = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40 + seed * 5)
    red = Image.blend(base, noise, 0.5)
    green = base.rotate(90 * (seed % 4)).resize((w, h))
    blue = Image.blend(noise, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.3)
    out = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(out, format="JPEG", quality=88)
    return out.getvalue()


def _commands(root: Path, images: list[bytes], n: int) -> list[ProcessFile]:
    commands = []
    for i in range(n):
        data = images[i % len(images)]
        relative = f"bench/{i}.jpg"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        commands.append(
            ProcessFile(
                file_type="profile_picture",
                stored_path=relative,
                original_filename=f"{i}.jpg",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                user_id=f"u-{i}",
            )
        )
    return commands


async def _pipeline_rate(root: Path, commands: list[ProcessFile]) -> float:
    executor = ThreadPoolExecutor(CONCURRENCY)
    pipeline = Pipeline(
        upload_dir=root / "uploads",
        store=LocalFileStore(root / "files"),
        scanners=[BuiltinScanner()],
        executor=executor,
    )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(command: ProcessFile) -> None:
        async with gate:
            upload = await pipeline.load(command)
            await pipeline.process(command, upload, file_id_for(command))

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(c) for c in commands))
        return len(commands) / (time.perf_counter() - t0)
    finally:
        executor.shutdown()


async def _naive_rate(images: list[bytes], n: int, workers: int) -> float:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    if workers == 1:
        for i in range(n):
            naive_profile_variants(images[i % len(images)])
    else:
        with ThreadPoolExecutor(workers) as pool:
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, naive_profile_variants, images[i % len(images)])
                    for i in range(n)
                )
            )
    return n / (time.perf_counter() - t0)


async def run_file_bench(n: int) -> dict[str, Any]:
    """Images per second of the service's pipeline and of naive Pillow, and their ratio."""
    n = max(1, n)
    images = [photo(seed) for seed in range(min(DISTINCT, n))]
    with tempfile.TemporaryDirectory(prefix="prs-bench-files-") as tmp:
        root = Path(tmp)
        commands = _commands(root / "uploads", images, n)
        naive_warm = naive_profile_variants(images[0])  # warm both paths (imports, codecs)
        del naive_warm
        await _pipeline_rate(root, commands[:1])
        pipeline = await _pipeline_rate(root, commands)
    naive = await _naive_rate(images, n, 1)
    naive_parallel = await _naive_rate(images, n, CONCURRENCY)
    return {
        "images": n,
        "image_size": f"{SIZE[0]}x{SIZE[1]}",
        "pipeline_images_per_s": round(pipeline, 2),
        "naive_images_per_s": round(naive, 2),
        "naive_parallel_images_per_s": round(naive_parallel, 2),
        "ratio": round(pipeline / naive, 2),
        "ratio_vs_naive_parallel": round(pipeline / naive_parallel, 2),
        "concurrency": CONCURRENCY,
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(asyncio.run(run_file_bench(count)))
