"""``index.html``: a self-contained page (inline CSS, JS and SVG; no network requests)."""

from __future__ import annotations

from html import escape

from metrics.spec import METRICS

from .aggregate import Leaderboard, Section
from .format import (
    DEFAULT_DIGITS,
    MISSING_MARK,
    absent_notes,
    column_title,
    concept_count,
    displayed,
    fmt,
    group_decimals,
    method_label,
    method_sentence,
    missing_notes,
    no_mixing_sentence,
    summary_sentence,
)
from .plots import PLOTS, method_colors, render_scatter

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1240px;
 padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta,.note{color:#555}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:12px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f4f4f6;vertical-align:bottom}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" ▲"}
table.sortable th[aria-sort=descending]::after{content:" ▼"}
th small{font-weight:normal;color:#666}
tr.reference td{font-style:italic;background:#fafafa}
.ci{color:#777;font-size:12px;display:block}
.flag{color:#b00}
.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}figcaption{color:#555;max-width:480px;font-size:13px}
svg.plot{background:#fff;font-family:system-ui,sans-serif}
svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}
svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#222}
svg .ptitle{font-size:14px;font-weight:600}svg .better{font-size:12px;fill:#888}
svg .plabel{font-size:11px;font-weight:600}svg line.ci{stroke-width:1.5;opacity:.7}
details{margin:12px 0}dt{font-weight:600;margin-top:8px}dd{margin-left:16px}
"""

# Sort on header click. Numeric columns sort best-first on the first click (the orientation is in
# data-better), rows without a value always go last; ties keep the page's order.
_JS = """
(function(){
  document.querySelectorAll("table.sortable").forEach(function(table){
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function(th, col){
      th.addEventListener("click", function(){
        var numeric = th.dataset.type === "num";
        var dir = th.getAttribute("aria-sort") === "descending" ? "ascending"
                : th.getAttribute("aria-sort") === "ascending" ? "descending"
                : (numeric && th.dataset.better === "higher" ? "descending" : "ascending");
        heads.forEach(function(h){ h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function(r, i){ return [r, i]; });
        var sign = dir === "ascending" ? 1 : -1;
        rows.sort(function(a, b){
          var ca = a[0].cells[col], cb = b[0].cells[col];
          var va = ca.dataset.value, vb = cb.dataset.value;
          if (numeric) {
            var ma = va === undefined, mb = vb === undefined;
            if (ma !== mb) return ma ? 1 : -1;
            if (!ma && Number(va) !== Number(vb)) return sign * (Number(va) - Number(vb));
          } else {
            var c = (va || ca.textContent).localeCompare(vb || cb.textContent);
            if (c !== 0) return sign * c;
          }
          return a[1] - b[1];
        });
        rows.forEach(function(p){ body.appendChild(p[0]); });
      });
    });
  });
  // "#sort=w2@1" in the address sorts every summary table by that metric on load (for links and tests).
  var m = /^#sort=(.+)$/.exec(decodeURIComponent(location.hash));
  if (m) {
    var sel = 'table.board thead th[data-metric="' + m[1].replace(/"/g, "") + '"]';
    document.querySelectorAll(sel).forEach(function(th){ th.click(); });
  }
  document.documentElement.dataset.sortReady = "1";
})();
"""


def _section_html(section: Section, digits: int, level: str) -> list[str]:
    sid = escape(f"suite-{section.suite}-{section.suite_version}")
    out = [f'<section class="suite" id="{sid}">', f"<h2>Suite <code>{escape(section.label)}</code></h2>"]
    out.append(
        f'<p class="note">{len(section.concepts)} concepts, {len(section.methods)} methods, '
        f"{section.n_rows} rows. {escape(no_mixing_sentence())}</p>"
    )
    decimals = [group_decimals(g, digits) for g in section.groups]

    out.append('<div class="scroll"><table class="board sortable"><thead><tr>')
    out.append('<th data-type="text">method</th><th data-type="text">version</th>')
    out.append('<th data-type="num" data-better="higher">concepts</th>')
    for group in section.groups:
        better = "higher" if group.spec.higher_is_better else "lower"
        title = f"{group.spec.name} — {better} is better"
        out.append(
            f'<th data-type="num" data-better="{better}" data-metric="{escape(group.metric_id)}" '
            f'title="{escape(title)}">{escape(column_title(section, group))} {group.arrow}<br>'
            f"<small>{escape(group.scale.label)} · mean [{level} CI]</small></th>"
        )
    out.append("</tr></thead><tbody>")
    for key in section.methods:
        cls = ' class="reference"' if key.is_reference else ""
        have = len(section.concepts_of(key))
        out.append(
            f'<tr{cls} data-method="{escape(key.label)}"><td>{escape(method_label(key))}</td>'
            f"<td>{escape(str(key.version))}</td>"
            f'<td data-value="{have}">{escape(concept_count(section, key))}</td>'
        )
        for group, d in zip(section.groups, decimals, strict=True):
            stat = group.stat_for(key)
            if stat is None:
                out.append("<td>—</td>")
                continue
            mean, low, high = displayed(group, stat)
            flag = (
                f' <span class="flag" title="missing concepts">{MISSING_MARK}</span>' if stat.missing else ""
            )
            out.append(
                f'<td data-value="{mean!r}">{fmt(mean, d)}{flag}'
                f'<span class="ci">[{fmt(low, d)}, {fmt(high, d)}]</span></td>'
            )
        out.append("</tr>")
    out.append("</tbody></table></div>")
    notes = [f"{MISSING_MARK} {n}" for n in missing_notes(section)] + [
        f"— {n}" for n in absent_notes(section)
    ]
    if notes:
        out.append('<ul class="note">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")

    colors = method_colors(section)
    out.append('<div class="plots">')
    for plot in PLOTS:
        xgroups, ygroups = section.groups_for(plot.x), section.groups_for(plot.y)
        if not xgroups or not ygroups:
            out.append(
                f'<p class="note noplot">{escape(plot.title)}: this suite has no '
                f"{escape(plot.x if not xgroups else plot.y)} rows.</p>"
            )
            continue
        for xg in xgroups:
            for yg in ygroups:
                svg, left_out = render_scatter(section, plot, xg, yg, colors)
                caption = plot.caption + f" Whiskers: {level} bootstrap intervals over concepts."
                if left_out:
                    caption += f" Not shown (lacking one of the two metrics): {', '.join(left_out)}."
                out.append(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>")
    out.append("</div>")

    out.append("<details><summary>Per-metric tables</summary>")
    for group, d in zip(section.groups, decimals, strict=True):
        out.append(
            f"<h3>{escape(column_title(section, group))} {group.arrow} — {escape(group.spec.name)}</h3>"
            f'<p class="note">Backbone: {escape(group.backbone or "none recorded")}. '
            f"Display scale: {escape(group.scale.label)}.</p>"
        )
        out.append('<table class="sortable"><thead><tr><th data-type="text">method</th>')
        out.append('<th data-type="text">version</th><th data-type="num" data-better="higher">concepts</th>')
        better = "higher" if group.spec.higher_is_better else "lower"
        for label in ("mean", f"{level} CI low", f"{level} CI high"):
            out.append(
                f'<th data-type="num" data-better="{better}">{label} <small>({escape(group.scale.label)})</small></th>'
            )
        out.append("</tr></thead><tbody>")
        for stat in group.stats:
            cls = ' class="reference"' if stat.key.is_reference else ""
            values = displayed(group, stat)
            cells = "".join(f'<td data-value="{v!r}">{fmt(v, d)}</td>' for v in values)
            out.append(
                f"<tr{cls}><td>{escape(method_label(stat.key))}</td><td>{escape(str(stat.key.version))}</td>"
                f'<td data-value="{stat.n_concepts}">{stat.n_concepts}/{len(section.concepts)}</td>{cells}</tr>'
            )
        out.append("</tbody></table>")
    out.append("</details></section>")
    return out


def render_html(board: Leaderboard, *, digits: int = DEFAULT_DIGITS) -> str:
    """Render the self-contained leaderboard page.

    The page makes no network request: styles, the sort script and the SVG plots are inline. Its only
    date is the latest ``created_at`` of the rows, so regenerating from the same rows gives identical
    bytes.

    Returns:
        The HTML document, ending in a newline.
    """
    level = f"{board.level:.0%}"
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>overfit-bench leaderboard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>overfit-bench leaderboard</h1>",
        f'<p class="meta">{escape(summary_sentence(board))}</p>',
        f'<p class="meta">{escape(method_sentence(board))} Click a column header to sort.</p>',
    ]
    for section in board.sections:
        out.extend(_section_html(section, digits, level))

    out.append('<section id="definitions"><h2>Metric definitions</h2><dl>')
    used = sorted(
        {(g.metric, g.metric_version) for s in board.sections for g in s.groups},
        key=lambda mv: (list(METRICS).index(mv[0]), mv[1]),
    )
    for metric, version in used:
        spec = METRICS[metric]
        better = "higher is better" if spec.higher_is_better else "lower is better"
        note = (
            ""
            if spec.version == version
            else f" This package defines {spec.id}, not {metric}@{version}: the text above is the {spec.id} "
            "definition and the orientation is assumed unchanged."
        )
        out.append(
            f'<dt id="metric-{escape(metric)}-{version}">{escape(metric)}@{version} {spec.arrow} {escape(spec.name)}</dt>'
            f"<dd>{escape(better)}. {escape(spec.definition)}{escape(note)}</dd>"
        )
    out.append("</dl></section>")
    out.append(f"<script>{_JS}</script>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
