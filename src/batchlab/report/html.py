"""HTML building blocks: escaping, tables, embedded figures and the self-contained page shell.

The page references nothing outside itself: figures are ``data:image/png;base64`` URIs, the
style sheet and the one script are inline. The script checks on load that every image
decoded and writes the count to ``<body data-images-ok="N/M">`` (and the console), so a
headless browser can prove the report renders.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

from batchlab.report.figures import FigureFile

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2433; background: #f6f7f9; }
main { max-width: 1500px; margin: 0 auto; padding: 16px 28px 60px; }
h1 { font-size: 26px; margin: 14px 0 4px; } h2 { font-size: 20px; margin: 34px 0 8px;
     border-bottom: 2px solid #d8dce3; padding-bottom: 4px; } h3 { font-size: 16px; margin: 20px 0 6px; }
.meta { color: #5b6473; margin: 0 0 10px; }
.card { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 10px 14px;
        margin: 10px 0; }
figure { margin: 10px 0 18px; background: #fff; border: 1px solid #e1e4ea; border-radius: 8px;
         padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #4a5262; font-size: 13px; margin: 6px 4px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; background: #fff; }
th, td { border: 1px solid #dde1e7; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #eef1f5; } td.l, th.l { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
.warn { color: #8a4b00; background: #fff5e6; border-left: 4px solid #f0a020; padding: 6px 10px; }
.note { color: #5b6473; font-size: 13px; }
ul.findings { margin: 2px 0 2px 18px; padding: 0; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.side > div { min-width: 0; }
pre { white-space: pre-wrap; word-break: break-word; font-size: 12px; background: #f3f4f7;
      padding: 6px 8px; border-radius: 4px; margin: 4px 0; }
nav a { margin-right: 14px; }
.answer { border-left: 5px solid #175cd3; }
.answer .pick { font-size: 18px; margin: 4px 0; }
.answer p { margin: 4px 0; }
.answer ul.why { margin: 6px 0 4px 18px; padding: 0; }
ul.points { margin: 4px 0 10px 18px; padding: 0; }
ul.points > li { margin: 3px 0; }
details.numbers { display: inline; color: #5b6473; font-size: 13px; }
details.numbers[open] { display: block; margin: 2px 0 6px; }
details.numbers summary { cursor: pointer; display: inline; }
details.numbers summary::before { content: "▸ "; } details.numbers[open] summary::before { content: "▾ "; }
details.numbers ul { margin: 2px 0 2px 16px; padding: 0; }
.label { font-weight: 600; white-space: nowrap; }
.label-ok { color: #146c2e; } .label-bad { color: #a12c1d; }
"""

# Runs after load: every <img> must have decoded (naturalWidth > 0).
CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.body.dataset.imagesOk = ok + "/" + imgs.length;
  console.log("batchlab report: images ok " + ok + "/" + imgs.length);
});
"""


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """Compact cell text: numbers to ``digits`` significant digits, None as '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}g}"
    return str(value)


class Raw:
    """Markup that ``table`` must not escape (e.g. a list of findings)."""

    def __init__(self, markup: str) -> None:
        self.markup = markup


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[int] = (0,)) -> str:
    """A table; columns in ``left`` are left-aligned (text), the rest right-aligned (numbers).
    Cells are escaped unless they are ``Raw`` markup."""
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i in left else ""
        text = v.markup if isinstance(v, Raw) else esc(fmt(v))
        return f"<{tag}{cls}>{text}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bullets(items: Sequence[str], cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<ul{klass}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def figure(f: FigureFile) -> str:
    """The figure embedded as a base64 PNG, with its caption and the file name beside it."""
    data = base64.b64encode(f.png).decode("ascii")
    caption = f"{esc(f.caption)} " if f.caption else ""
    return (f'<figure id="fig-{esc(f.name)}"><img alt="{esc(f.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption><b>{esc(f.title)}.</b> {caption}'
            f'<span class="note">({esc(f.path.parent.name)}/{esc(f.path.name)})</span>'
            "</figcaption></figure>")


def section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: (title, anchor, body HTML) sections with a contents bar on top."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for t, a, _ in sections)
    body = "".join(section(t, b, a) for t, a, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>{esc(title)}</h1><p class=\"meta\">{esc(subtitle)}</p>"
        f"<nav>{nav}</nav>{body}</main><script>{CHECK_SCRIPT}</script></body></html>\n"
    )
