"""The UI's stylesheet and its one small script, served from ``<path>/static/`` (no inline code)."""

from __future__ import annotations

__all__ = ["FILES"]

CSS = """
:root{--fg:#1d232b;--muted:#5b6673;--line:#d9dee4;--accent:#1f5fbf;--bad:#b3261e;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;
 padding:.6rem 1rem;background:#fff;border-bottom:1px solid var(--line)}
header .brand{font-weight:700;color:var(--fg);text-decoration:none}
header nav{display:flex;gap:.6rem;align-items:center;color:var(--muted)}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 1rem;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
a{color:var(--accent)}
.table-wrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);white-space:nowrap}
tr:last-child td{border-bottom:0}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
.digest{overflow-wrap:anywhere}
pre{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.8rem;overflow:auto;max-height:32rem}
form.search{display:flex;gap:.5rem;margin-bottom:1rem}
input[type=search],input[type=text],input[type=password]{flex:1;min-width:0;padding:.5rem;font-size:1rem;
 border:1px solid var(--line);border-radius:4px}
button{padding:.45rem .8rem;font-size:.95rem;border-radius:4px;border:1px solid var(--accent);
 background:var(--accent);color:#fff;cursor:pointer}
button.link{background:none;border:0;color:var(--accent);padding:0;text-decoration:underline}
button.danger{background:#fff;color:var(--bad);border-color:var(--bad)}
button.copy{background:#fff;color:var(--accent);padding:.1rem .4rem;font-size:.8rem;margin-left:.3rem}
form.inline{display:inline}
.pager{display:flex;gap:1rem;align-items:center;margin-top:.8rem;color:var(--muted)}
.notice{padding:.6rem .8rem;border-radius:6px;background:#fff;border:1px solid var(--line);margin-bottom:1rem}
.error{border-color:var(--bad);color:var(--bad)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
form.login{display:grid;gap:.7rem;max-width:22rem}
form.login label{display:grid;gap:.2rem}
@media (max-width:600px){main{padding:.6rem}th,td{padding:.35rem .4rem}dl.facts{grid-template-columns:1fr}
 dl.facts dt{margin-top:.4rem}}
"""

JS = """
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var text = b.getAttribute("data-copy");
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () { b.textContent = "copied"; });
      }
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
});
"""

FILES: dict[str, tuple[str, bytes]] = {
    "ui.css": ("text/css; charset=utf-8", CSS.encode()),
    "ui.js": ("text/javascript; charset=utf-8", JS.encode()),
}
