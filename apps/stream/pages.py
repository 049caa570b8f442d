"""The browser view's pages: one source's live page, and the grid of every source in a run with several."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Sequence

# The start of every page, up to its own styles: HEAD + "...styles...</style>...".format(title=...).
HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ margin: 0; padding: 12px; background: #111; color: #eee; font: 16px system-ui, sans-serif; }}
  h1 {{ margin: 0 0 10px; font-size: 20px; font-weight: 600; }}
"""
PAGE = HEAD + """  main {{ display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }}
  #stream {{ display: block; max-width: 100%; background: #222; }}
  aside {{ min-width: 220px; }}
  dt {{ color: #999; font-size: 13px; }}
  dd {{ margin: 0 0 10px; font-size: 22px; font-variant-numeric: tabular-nums; }}
  #counts {{ margin: 0; padding-left: 18px; font-size: 18px; }}
  #verdict {{ margin-top: 12px; padding: 10px 14px; border-radius: 6px; font-size: 34px; font-weight: 700; }}
  #verdict:empty {{ display: none; }}
  #verdict.welcome {{ background: #1b7a2f; }}
  #verdict.unknown {{ background: #a42020; }}
  #verdict.info {{ background: #555; }}
  #connection {{ color: #e66; font-size: 13px; }}
  #notice {{ margin-top: 12px; color: #fc6; font-size: 15px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<main>
  <img id="stream" src="stream.mjpg" alt="live stream">
  <aside>
    <dl>
      <dt>FPS</dt><dd id="fps">-</dd>
      <dt>model latency</dt><dd id="latency">-</dd>
      <dt>counts</dt><dd><ul id="counts"></ul></dd>
    </dl>
    <div id="verdict" class="info"></div>
    <div id="notice"></div>
    <div id="connection"></div>
  </aside>
</main>
<script>
const KINDS = ["welcome", "unknown", "info"];
const byId = (id) => document.getElementById(id);
const number = (value, digits, unit) => (typeof value === "number" ? value.toFixed(digits) + unit : "-");

function show(stats) {{
  byId("fps").textContent = number(stats.fps, 1, "");
  byId("latency").textContent = number(stats.latency_ms, 1, " ms");
  const counts = byId("counts");
  counts.replaceChildren(...Object.entries(stats.counts || {{}}).map(([name, n]) => {{
    const item = document.createElement("li");
    item.textContent = name + ": " + n;
    return item;
  }}));
  const verdict = byId("verdict");
  verdict.textContent = stats.verdict || "";
  verdict.className = KINDS.includes(stats.verdict_kind) ? stats.verdict_kind : "info";
  byId("notice").textContent = stats.notice || "";
}}

async function poll() {{
  try {{
    const response = await fetch("stats.json", {{cache: "no-store"}});
    show(await response.json());
    byId("connection").textContent = "";
  }} catch (error) {{
    byId("connection").textContent = "disconnected: retrying";
  }}
  setTimeout(poll, 500);
}}
poll();
</script>
</body>
</html>
"""

GRID = HEAD + """  main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }}
  figure {{ margin: 0; background: #1b1b1b; padding: 6px; }}
  figure img {{ display: block; width: 100%; background: #222; }}
  figcaption {{ display: flex; justify-content: space-between; padding-top: 4px; font-size: 14px; }}
  a {{ color: #9cf; }}
  .counts {{ color: #bbb; font-size: 13px; min-height: 1.2em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<main>
{cards}
</main>
<script>
async function poll(card) {{
  try {{
    const stats = await (await fetch(card.dataset.stats, {{cache: "no-store"}})).json();
    card.querySelector(".fps").textContent = typeof stats.fps === "number" ? stats.fps.toFixed(1) + " FPS" : "-";
    card.querySelector(".counts").textContent =
      Object.entries(stats.counts || {{}}).map(([name, n]) => name + ": " + n).join(", ");
  }} catch (error) {{
    card.querySelector(".fps").textContent = "disconnected";
  }}
  setTimeout(() => poll(card), 1000);
}}
document.querySelectorAll("figure").forEach(poll);
</script>
</body>
</html>
"""
CARD = """<figure data-stats="source/{path}/stats.json">
  <a href="source/{path}/"><img src="source/{path}/stream.mjpg" alt="{name}"></a>
  <figcaption><a href="source/{path}/">{name}</a><span class="fps">-</span></figcaption>
  <div class="counts"></div>
</figure>"""


def source_page(title: str) -> bytes:
    """One source's page: its stream, FPS, latency, counts and the kiosk's verdict (URLs relative to the page)."""
    return PAGE.format(title=html.escape(title)).encode()


def grid_page(title: str, names: Sequence[str]) -> bytes:
    """The page of a run with several sources: each one's stream and numbers, linking to its own page."""
    cards = "\n".join(CARD.format(path=urllib.parse.quote(name), name=html.escape(name)) for name in names)
    return GRID.format(title=html.escape(title), cards=cards).encode()
