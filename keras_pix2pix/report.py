"""The report of `keras-pix2pix evaluate`: OUTPUT/metrics.json and OUTPUT/index.html.

The page is self-contained and opens with no network: the summary, the run's training curves when
it has them, then one row per image (input | output | target thumbnails from OUTPUT/images/ and
its figures), sortable by any column.
"""

import html
import json
import math
import os
import re

import numpy as np

from keras_pix2pix.files import write_atomically
from keras_pix2pix.labels import per_class_scores
from keras_pix2pix.plots import plot_confusion
from keras_pix2pix.workdir import losses_plot


def write_report(output_dir, summary, rows, workdir=None, labels=None):
    """Writes OUTPUT/metrics.json (the summary and each image's row) and OUTPUT/index.html.

    Args:
        output_dir: the report folder; the rows' thumbnails are in its images/ already.
        summary: the summary figures (metrics.json's "summary").
        rows: {"name", "files", "metrics"} of each image (metrics.json's "images").
        workdir: the model evaluated (a work directory shows its losses.png; a .keras file or None: no curves).
        labels: (class names, the split's confusion hist[target, output]) of a label model, or None:
            metrics.json gains "classes" (each one's pixels, accuracy and IoU) and "confusion", the
            page a table of them and OUTPUT/confusion.png.

    Example:
    >>> os.makedirs(tmp + "/empty_report", exist_ok=True)
    >>> write_report(tmp + "/empty_report", {"pairs": 0, "source": "nothing"}, [])
    >>> sorted(os.listdir(tmp + "/empty_report"))
    ['index.html', 'metrics.json']
    """
    report = {"summary": summary, "images": rows}
    if labels is not None:
        names, confusion = labels
        accuracy, iou = per_class_scores(confusion)
        report["classes"] = [
            {"name": name, "pixels": int(pixels), "accuracy": float(share), "iou": float(overlap)}
            for name, pixels, share, overlap in zip(names, np.sum(confusion, axis=1), accuracy, iou)
        ]
        report["confusion"] = np.asarray(confusion).tolist()
        plot_confusion(confusion, names, os.path.join(output_dir, "confusion.png"))
    write_atomically(os.path.join(output_dir, "metrics.json"), json.dumps(report, indent=2))
    write_html(report, os.path.join(output_dir, "index.html"), curves=_copy_curves(workdir, output_dir))


def _copy_curves(workdir, output_dir):
    """The run's losses.png, copied beside the page; its name there, or None when the model has none."""
    source = losses_plot(workdir) if workdir and os.path.isdir(workdir) else None
    if source is None or not os.path.isfile(source):
        return None
    with open(source, "rb") as file:
        write_atomically(os.path.join(output_dir, "losses.png"), file.read())
    return "losses.png"


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keras-pix2pix evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }}
th.sorted-up::after {{ content: " \\25B2"; }} th.sorted-down::after {{ content: " \\25BC"; }}
td.name, th.name {{ text-align: left; }}
img {{ width: {thumb}px; height: auto; image-rendering: auto; display: block; }}
#summary td, #summary th {{ cursor: default; }}
</style></head><body>
<h1>keras-pix2pix evaluation</h1>
<p>{source}: {pairs} pairs. Click a column header to sort.</p>
<table id="summary"><tr>{summary_head}</tr><tr>{summary_row}</tr></table>
{notes}
{classes}
{curves}
<h2>Images</h2>
<table id="images"><thead><tr><th class="name">#</th><th class="name">name</th>
<th class="name">input</th><th class="name">output</th><th class="name">target</th>{metric_head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
document.querySelectorAll("#images th").forEach(function (header, column) {{
  header.addEventListener("click", function () {{
    var body = document.querySelector("#images tbody");
    var up = !header.classList.contains("sorted-up");
    document.querySelectorAll("#images th").forEach(function (h) {{ h.classList.remove("sorted-up", "sorted-down"); }});
    header.classList.add(up ? "sorted-up" : "sorted-down");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      // Names sort naturally (2 before 10), as the rows first appear.
      var order = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y), undefined, {{numeric: true}}) : nx - ny;
      return up ? order : -order;
    }});
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }});
}});
</script>
</body></html>
"""


def natural_key(name):
    """Sorts names as people do: digits by their value.

    Example:
    >>> sorted(["10.jpg", "2.jpg", "1.jpg", "b1", "a10", "a9"], key=natural_key)
    ['1.jpg', '2.jpg', '10.jpg', 'a9', 'a10', 'b1']
    """
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part]


def write_html(report, path, thumbnail=160, curves=None):
    """A self-contained page: the summary, the training curves if given, then one sortable row per image.

    Args:
        report: the report (metrics.json's content).
        path: the page to write.
        thumbnail: the width of the thumbnails, in pixels.
        curves: the training curves' PNG, relative to the page (losses.png), or None.
    """
    summary = report["summary"]
    numbers = {key: value for key, value in summary.items() if isinstance(value, float)}
    keys = list(report["images"][0]["metrics"]) if report["images"] else []
    rows = []
    # Rows in the natural order of their names (1, 2, 10, not 1, 10, 2); # numbers them so.
    for index, row in enumerate(sorted(report["images"], key=lambda row: natural_key(row["name"]))):
        cells = [f'<td class="name" data-value="{index + 1}">{index + 1}</td>']
        cells.append(f'<td class="name" data-value="{html.escape(row["name"])}">{html.escape(row["name"])}</td>')
        for role in ("input", "output", "target"):
            source = row["files"].get(role)
            cells.append(
                f'<td class="name" data-value="{index}"><img src="{html.escape(source)}" alt="{role}" loading="lazy"></td>'
                if source
                else f'<td data-value="{index}"></td>'
            )
        for key in keys:
            value = row["metrics"][key]
            cells.append(f'<td data-value="{value:.6g}">{_format(key, value)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    page = _HTML.format(
        thumb=thumbnail,
        source=html.escape(str(summary.get("source", ""))),
        pairs=summary.get("pairs", 0),
        summary_head="".join(f"<th>{html.escape(key)}</th>" for key in numbers),
        summary_row="".join(f"<td>{_format(key, value)}</td>" for key, value in numbers.items()),
        notes="".join(f"<p>{title}: {html.escape(summary[key])}.</p>" for key, title in
                      (("fid_network", "FID and KID"), ("label_protocol", "Label scores")) if key in summary),
        classes=_classes_html(report.get("classes")),
        curves=f'<h2>Training</h2><img src="{html.escape(curves)}" alt="training curves" style="width: 880px">'
        if curves else "",
        metric_head="".join(f"<th>{html.escape(key)}</th>" for key in keys),
        rows="\n".join(rows),
    )
    write_atomically(path, page)


def _classes_html(classes):
    """The per-class table and the confusion picture of a label model's page; "" for other models."""
    if not classes:
        return ""
    rows = "".join(
        f'<tr><td class="name">{html.escape(row["name"])}</td><td>{row["pixels"]:,}</td>'
        f'<td>{row["accuracy"]:.4f}</td><td>{row["iou"]:.4f}</td></tr>' for row in classes
    )
    return (
        '<h2>Classes</h2><table id="classes"><tr><th class="name">class</th><th>target pixels</th><th>accuracy</th>'
        f'<th>IoU</th></tr>{rows}</table>\n<p><img src="confusion.png" alt="confusion matrix" style="width: 640px"></p>'
    )


def _format(key, value):
    if key.startswith("psnr"):
        return f"{value:.2f}"
    if key.startswith("fid") or key == "l1_255":
        return f"{value:.2f}"
    if math.isfinite(value) and abs(value) < 1e-3 and value != 0:
        return f"{value:.2e}"
    return f"{value:.4f}"
