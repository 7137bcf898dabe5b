"""The evaluation report of a run: one self-contained HTML page (opens from the bucket, no server) and JSON.

The page shows the decision and the rule, the aggregate scores of candidate and champion against the
tolerance and the floor, the tuning curve and the scores as charts (matplotlib, inline SVG), and the
per-prompt table (prompt, expected, candidate, champion, scores). A Gemini tuning job has no curve to
draw (Vertex keeps it in the job's Vertex AI Experiment): the page names the Experiment and shows what
the job reports instead, its tuning data stats. No Airflow and no Google import; matplotlib is imported
when a chart is drawn.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from typing import Any

from aria_tuning.promotion import METRICS
from aria_tuning.training_curve import Curve, JobStats

#: The Model Registry's schema for text-generation evaluation metrics (what the console's Evaluate tab reads).
METRICS_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/modelevaluation/general_text_generation_metrics_1.0.0.yaml"
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#202124;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:600;color:#fff}
.pass{background:#188038}.fail{background:#c5221f}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #dadce0;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f1f3f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.primary td{font-weight:600}.low{color:#c5221f}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#5f6368}
code{background:#f1f3f4;padding:0 .2rem}
"""


def report_json(report: dict[str, Any], curve: Curve | None, stats: JobStats | None = None) -> str:
    """The numbers of the report: the gate's evaluation, the tuning curve or a Gemini job's data stats."""
    tuning = {
        "tuning_curve": curve.to_dict() if curve else None,
        "tuning_data_stats": stats.to_dict() if stats else None,
    }
    return json.dumps({**report, **tuning}, indent=2, ensure_ascii=False)


def report_html(report: dict[str, Any], curve: Curve | None, stats: JobStats | None = None) -> str:
    decision, rule = report["decision"], report["rule"]
    candidate, champion = report["candidate"], report["champion"]
    passed = bool(decision["passed"])
    verdict = "PROMOTE" if passed else "REFUSE"
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in decision["reasons"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Evaluation of {_e(candidate['model'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Evaluation of <code>{_e(candidate['model'])}</code></h1>",
        f'<p><span class="verdict {"pass" if passed else "fail"}" id="decision">{verdict}</span> '
        f"against the {_e(champion['kind'])} <code>{_e(champion['model'])}</code> on "
        f"{report['count']} held-out prompts of <code>{_e(report['eval_data_uri'])}</code>.</p>",
        f"<ul>{reasons}</ul>" if reasons else "",
        f"<p>Rule: promote only if the candidate's mean <b>{_e(rule['primary'])}</b> is at least the "
        f"champion's minus <b>{rule['tolerance']}</b> and at least <b>{rule['floor']}</b>. Scores from "
        "Vertex AI's Gen AI evaluation service (<code>evaluateInstances</code>).</p>",
        "<h2>Scores</h2>",
        _aggregates(report),
        _figure("scores", _scores_chart(report), "Mean score per metric; the dashed line is the floor."),
        "<h2>Tuning curve</h2>",
        _tuning(curve, stats),
        "<h2>Prompts</h2>",
        _prompts(report),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _aggregates(report: dict[str, Any]) -> str:
    rule = report["rule"]
    rows = []
    for name in rule["metrics"]:
        mine, theirs = report["candidate"]["aggregates"][name], report["champion"]["aggregates"][name]
        primary = name == rule["primary"]
        floor = f"{rule['floor']:.3f}" if primary else ""
        low = ' class="num low"' if primary and mine < rule["floor"] else ' class="num"'
        title = METRICS[name].title + (" (primary)" if primary else "")
        cells = [
            f"<td>{_e(title)}</td>",
            f"<td{low}>{mine:.3f}</td>",
            f"<td class=num>{theirs:.3f}</td>",
            f"<td class=num>{mine - theirs:+.3f}</td>",
            f"<td class=num>{floor}</td>",
        ]
        rows.append(f"<tr{' class=primary' if primary else ''}>{''.join(cells)}</tr>")
    return (
        '<table id="aggregates"><thead><tr><th>Metric</th><th>Candidate</th><th>Champion</th>'
        f"<th>Difference</th><th>Floor</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _prompts(report: dict[str, Any]) -> str:
    metrics: Sequence[str] = report["rule"]["metrics"]
    head = "".join(f"<th>{_e(METRICS[m].title)}<br>cand. / champ.</th>" for m in metrics)
    rows = []
    for row in report["prompts"]:
        scores = "".join(
            f"<td class=num>{row['scores']['candidate'][m]:.2f} / {row['scores']['champion'][m]:.2f}</td>"
            for m in metrics
        )
        rows.append(
            f"<tr><td class=num>{row['line']}</td><td>{_e(row['prompt'])}</td><td>{_e(row['expected'])}</td>"
            f"<td>{_e(row['candidate'])}</td><td>{_e(row['champion'])}</td>{scores}</tr>"
        )
    return (
        '<table id="prompts"><thead><tr><th>Line</th><th>Prompt</th><th>Expected</th><th>Candidate</th>'
        f"<th>Champion</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _tuning(curve: Curve | None, stats: JobStats | None) -> str:
    """The loss curve where the run reported one; for a Gemini job, where its curve is and its stats."""
    if curve and curve.train:
        return _figure("tuning-curve", _curve_chart(curve), _curve_caption(curve))
    if stats is None:
        return '<p id="tuning-curve">The tuning run reported no loss curve that the pipeline could read.</p>'
    where = f"<code>{_e(stats.experiment)}</code>" if stats.experiment else "(not named by the job)"
    rows = [
        ("Training examples", stats.examples),
        ("Tuning steps", stats.steps),
        ("Billable tokens (the dataset's tokens x epochs)", stats.billable_tokens),
    ]
    cells = "".join(f"<tr><th>{_e(name)}</th><td class=num>{value:,}</td></tr>" for name, value in rows)
    return (
        '<div id="tuning-curve"><p>A Gemini tuning job reports no loss curve on the job: Vertex AI keeps its '
        f"tuning metrics in the job's Vertex AI Experiment {where}, which this report does not read. "
        "What the job reports of its run "
        f'(<code>tuningDataStats</code>):</p><table id="tuning-stats"><tbody>{cells}</tbody></table></div>'
    )


def _figure(figure_id: str, svg: str, caption: str) -> str:
    return f'<figure id="{figure_id}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _curve_caption(curve: Curve | None) -> str:
    if curve is None:
        return ""
    evaluated = f", eval loss at {len(curve.eval)} steps" if curve.eval else ", no eval loss reported"
    return f"Loss per step ({len(curve.train)} steps{evaluated}), from {curve.source}."


def _svg(figure: Any) -> str:
    """The figure as an <svg> element (no XML prolog), text kept as text."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _new_figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # labels stay text: searchable, and smaller
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in any thread

    return Figure(figsize=(width, height), dpi=100)


def _curve_chart(curve: Curve) -> str:
    figure = _new_figure(8, 3.2)
    axes = figure.subplots()
    axes.plot([s for s, _ in curve.train], [v for _, v in curve.train], label="train loss", color="#1a73e8")
    if curve.eval:
        axes.plot(
            [s for s, _ in curve.eval], [v for _, v in curve.eval], "o--", label="eval loss", color="#e37400"
        )
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    return _svg(figure)


def _scores_chart(report: dict[str, Any]) -> str:
    rule = report["rule"]
    names = list(rule["metrics"])
    figure = _new_figure(8, 3.2)
    axes = figure.subplots()
    positions = range(len(names))
    width = 0.38
    axes.bar(
        [p - width / 2 for p in positions],
        [report["candidate"]["aggregates"][n] for n in names],
        width,
        label="candidate",
        color="#1a73e8",
    )
    axes.bar(
        [p + width / 2 for p in positions],
        [report["champion"]["aggregates"][n] for n in names],
        width,
        label=f"champion ({report['champion']['kind']})",
        color="#9aa0a6",
    )
    axes.axhline(rule["floor"], linestyle="--", color="#c5221f", label=f"floor ({rule['primary']})")
    axes.set_xticks(list(positions), [METRICS[n].title for n in names])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("mean score")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    return _svg(figure)


def model_evaluation(report: dict[str, Any], verdict: str, html_uri: str, json_uri: str) -> dict[str, Any]:
    """The ModelEvaluation of the report: the candidate's means as metrics, the rest as metadata."""
    camel = {
        "exact_match": "exactMatch",
        "bleu": "bleu",
        "rouge_1": "rouge1",
        "rouge_2": "rouge2",
        "rouge_l": "rougeL",
        "rouge_l_sum": "rougeLSum",
    }
    champion = report["champion"]
    return {
        "display_name": f"{verdict} vs {champion['kind']} {champion['model'].rsplit('/', 1)[-1]}"[:128],
        "metrics_schema_uri": METRICS_SCHEMA,
        "metrics": {camel[k]: v for k, v in report["candidate"]["aggregates"].items()},
        "metadata": {
            "decision": verdict,
            "reasons": report["decision"]["reasons"],
            "rule": report["rule"],
            "champion": {
                "model": champion["model"],
                "kind": champion["kind"],
                "metrics": champion["aggregates"],
            },
            "prompts": report["count"],
            "evalDataUri": report["eval_data_uri"],
            "reportHtml": html_uri,
            "reportJson": json_uri,
        },
    }
