"""Document bytes to plain text, per file type, with well-kept parsers:

- txt, md: UTF-8 (a BOM is fine), else GB18030 (common for Chinese text files). Markdown
  stays as written: its markup is readable and carries structure the chunker keeps.
- html: selectolax (Lexbor engine; fast, tolerant of broken markup), without script,
  style and other non-content elements.
- pdf: pypdf (pure Python, maintained, no system libraries).
- docx: python-docx, paragraphs and table cells in document order.

Every failure is a ParseError whose message is shown to the user as `status_descript`.
"""

from __future__ import annotations

import io
import zipfile

import docx
import pypdf
from pypdf.errors import PyPdfError
from selectolax.lexbor import LexborHTMLParser


class ParseError(ValueError):
    pass


def parse(data: bytes, file_type: str) -> str:
    if file_type in ("txt", "md"):
        return _decode_text(data)
    if file_type == "html":
        return html_text(_decode_text(data))
    if file_type == "pdf":
        return _pdf_text(data)
    if file_type == "docx":
        return _docx_text(data)
    raise ParseError(f"unsupported file type {file_type!r}")


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise ParseError("the file is not text (neither UTF-8 nor GB18030)")


_NON_CONTENT = "script, style, noscript, template, svg, head"


def html_text(html: str) -> str:
    tree = LexborHTMLParser(html)
    for node in tree.css(_NON_CONTENT):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return ""
    return str(root.text(separator="\n", strip=True))


def _pdf_text(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ParseError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ParseError(f"could not read the PDF: {exc}") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _docx_text(data: bytes) -> str:
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ParseError(f"could not read the DOCX: {exc}") from exc
    parts: list[str] = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(p for p in parts if p.strip())
