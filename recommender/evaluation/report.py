"""Evaluation output: a table for the terminal, and a self-contained HTML report with plots."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from .metrics import METRICS
from .runner import EvaluationResult

HEADLINE = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage",
            "popularity_bias", "eligibility_violations")


def table(result: EvaluationResult) -> str:
    """The headline metrics at each k, one row per strategy, with the protocol above."""
    lines = [f"{key}: {value}" for key, value in result.protocol.items()]
    lines += [f"note: {note}" for note in result.notes]
    for k in result.ks:
        cols = [f"{m}@{k}" for m in HEADLINE]
        lines.append("")
        header = f"{'strategy':28}" + "".join(f"{c.split('@')[0][:11]:>12}" for c in cols)
        lines.append(f"at k = {k}")
        lines.append(header)
        for name, values in result.metrics.items():
            lines.append(f"{name[:28]:28}" + "".join(f"{values.get(c, float('nan')):12.4f}"
                                                      for c in cols))
    k = result.ks[-1]
    ci_key = f"ndcg@{k}"
    lines.append("")
    lines.append(f"95% interval of ndcg@{k}:")
    for name, intervals in result.intervals.items():
        if ci_key in intervals:
            low, high = intervals[ci_key]
            lines.append(f"  {name[:28]:28} {result.metrics[name][ci_key]:.4f} "
                         f"[{low:.4f}, {high:.4f}]")
    if result.online:
        lines.append("")
        lines.append("online funnel (feedback log):")
        lines.append(f"  {'by':10}{'value':24}{'impressions':>12}{'clicks':>8}{'accepts':>8}"
                     f"{'ctr':>8}{'accept':>8}")
        for row in _funnel_rows(result):
            lines.append(f"  {row['by']:10}{row['value'][:24]:24}{row['impressions']:12}"
                         f"{row['clicks']:8}{row['accepts']:8}{row['ctr']:8.3f}"
                         f"{row['acceptance_rate']:8.3f}")
    arms = [row for row in result.online if row["by"] == "arm"]
    if arms:
        lines.append("")
        lines.append("experiments (95% Wilson intervals; p: two-proportion z-test against the "
                     "first arm):")
        lines.append(f"  {'experiment/arm':28}{'customers':>10}{'impr.':>8}"
                     f"{'ctr [interval]':>24}{'p':>8}{'accept [interval]':>24}{'p':>8}")
        for row in arms:
            lines.append(f"  {row['value'][:28]:28}{row['customers']:10}{row['impressions']:8}"
                         + "".join(f"{_rate(row, r):>24}{_p(row, r):>8}"
                                   for r in ("ctr", "acceptance_rate")))
    return "\n".join(lines)


def _funnel_rows(result: EvaluationResult) -> list[dict[str, Any]]:
    """The funnel's rows by dimension (experiment arms have their own table)."""
    return [row for row in result.online if row["by"] != "arm"]


def _rate(row: dict[str, Any], rate: str) -> str:
    low, high = row[f"{rate}_ci"]
    return f"{row[rate]:.3f} [{low:.3f}, {high:.3f}]"


def _p(row: dict[str, Any], rate: str) -> str:
    p = row.get(f"{rate}_p_value")
    return "base" if p is None and row["arm"] == row["baseline"] else \
        "-" if p is None else f"{p:.3g}"


def html_report(result: EvaluationResult, title: str = "Offline evaluation") -> str:
    """One HTML file, images embedded: metric against k per strategy, per-slice bars."""
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}"
             "</title><style>body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;"
             "margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;"
             "margin:.6em 0}td,th{border-bottom:1px solid #ddd;padding:.25em .6em;"
             "text-align:right}th:first-child,td:first-child{text-align:left}"
             "img{max-width:100%}code{background:#f4f4f4;padding:0 .3em}</style></head><body>",
             f"<h1>{esc(title)}</h1><h2>Protocol</h2><table>"]
    for key, value in result.protocol.items():
        parts.append(f"<tr><th>{esc(key)}</th><td style='text-align:left'>"
                     f"{esc(str(value))}</td></tr>")
    parts.append("</table>")
    if result.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{esc(note)}</li>" for note in result.notes]
        parts.append("</ul>")
    for k in result.ks:
        parts.append(f"<h2>Metrics at k = {k}</h2><table><tr><th>strategy</th>")
        parts += [f"<th>{esc(m)}</th>" for m in HEADLINE]
        parts.append("</tr>")
        for name, values in result.metrics.items():
            parts.append(f"<tr><td>{esc(name)}</td>")
            for metric in HEADLINE:
                key = f"{metric}@{k}"
                cell = f"{values.get(key, float('nan')):.4f}"
                if key in result.intervals.get(name, {}):
                    low, high = result.intervals[name][key]
                    cell += f"<br><small>[{low:.4f}, {high:.4f}]</small>"
                parts.append(f"<td>{cell}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    parts.append("<h2>Metric against k</h2>")
    parts.append(_img(_plot_against_k(result)))
    parts.append("<h2>Slices</h2><p>Per channel (of the held-out order), customer segment and "
                 "moment, at the largest k.</p>")
    parts.append(_img(_plot_slices(result)))
    if result.fitted:
        parts.append("<h2>Fitted strategies</h2><table><tr><th>strategy</th><th>settings and "
                     "size</th></tr>")
        for name, info in result.fitted.items():
            parts.append(f"<tr><td>{esc(name)}</td><td style='text-align:left'>"
                         f"{esc(', '.join(f'{k}={v}' for k, v in info.items()))}</td></tr>")
        parts.append("</table>")
    if result.online:
        parts.append("<h2>Online funnel</h2><p>From the feedback the API recorded: "
                     "impression &rarr; click &rarr; accept.</p><table><tr><th>by</th>"
                     "<th>value</th><th>impressions</th><th>clicks</th><th>accepts</th>"
                     "<th>dismisses</th><th>CTR</th><th>acceptance</th></tr>")
        for row in _funnel_rows(result):
            parts.append(f"<tr><td>{esc(row['by'])}</td><td>{esc(row['value'])}</td>"
                         f"<td>{row['impressions']}</td><td>{row['clicks']}</td>"
                         f"<td>{row['accepts']}</td><td>{row['dismissals']}</td>"
                         f"<td>{row['ctr']:.3f}</td><td>{row['acceptance_rate']:.3f}</td></tr>")
        parts.append("</table>")
    arms = [row for row in result.online if row["by"] == "arm"]
    if arms:
        parts.append("<h2>Experiments</h2><p>Per arm, from the feedback attributed to it: "
                     "rates with 95% Wilson score intervals, and the two-sided p-value of a "
                     "two-proportion z-test against the experiment's first arm (the baseline)."
                     " The unit is the impression.</p><table><tr><th>experiment</th>"
                     "<th>arm</th><th>customers</th><th>impressions</th><th>clicks</th>"
                     "<th>accepts</th><th>CTR [95%]</th><th>p</th><th>acceptance [95%]</th>"
                     "<th>p</th></tr>")
        for row in arms:
            parts.append(f"<tr><td>{esc(row['experiment'])}</td><td>{esc(row['arm'])}</td>"
                         f"<td>{row['customers']}</td><td>{row['impressions']}</td>"
                         f"<td>{row['clicks']}</td><td>{row['accepts']}</td>"
                         + "".join(f"<td>{esc(_rate(row, r))}</td><td>{esc(_p(row, r))}</td>"
                                   for r in ("ctr", "acceptance_rate")) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Definitions</h2><p>Binary relevance; a target is a held-out order of a "
                 "business the customer did not hold in training. " + esc(
                     ", ".join(METRICS)) + " as in <code>recommender.evaluation.metrics"
                 "</code>; coverage = share of orderable businesses recommended to anyone; "
                 "popularity bias = mean share of training customers holding what is "
                 "recommended; eligibility violations = share of served suggestions the "
                 "catalog says the customer could not take (must be 0).</p></body></html>")
    return "".join(parts)


def _img(png: bytes) -> str:
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_against_k(result: EvaluationResult) -> bytes:
    plt = _figure()
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, metric in zip(axes.ravel(), METRICS, strict=True):
        for name, values in result.metrics.items():
            ys = [values.get(f"{metric}@{k}", 0.0) for k in result.ks]
            ax.plot(result.ks, ys, marker="o", label=name)
        ax.set_title(metric)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig, plt)


def _plot_slices(result: EvaluationResult) -> bytes:
    plt = _figure()
    k = result.ks[-1]
    key = f"ndcg@{k}"
    names = list(result.metrics)
    groups = sorted({g for name in names for g in result.slices.get(name, {})})
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        ys = [result.slices.get(name, {}).get(g, {}).get(key, 0.0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], ys, width, label=name)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(groups))])
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig, plt)


def _png(fig: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
