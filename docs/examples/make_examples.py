"""Make the sample files the README's examples upload: a JPEG photo and a one-page PDF.

Run with ``.venv/bin/python docs/examples/make_examples.py``; the output is committed, so the
README works without running this first. The files are built, not found, so that they carry
nothing but what is written here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def make_profile_picture(path: Path) -> None:
    """A 600x600 JPEG: a gradient with a circle, like a face on a background."""
    image = Image.new("RGB", (600, 600))
    pixels = image.load()
    assert pixels is not None
    for y in range(600):
        for x in range(600):
            pixels[x, y] = (40 + x // 5, 90 + y // 6, 160)
    ImageDraw.Draw(image).ellipse((170, 120, 430, 380), fill=(235, 200, 170))
    image.save(path, "JPEG", quality=85)


def make_deal_attachment(path: Path) -> None:
    """A one-page PDF: a purchase order for the demo deal."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(0, 10, "Purchase order for deal demo-acme-deal-1", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 8, "Client: Initech. Amount: 12,000.00 USD.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


if __name__ == "__main__":
    make_profile_picture(HERE / "profile.jpg")
    make_deal_attachment(HERE / "purchase-order.pdf")
