"""Medians per (scenario, target), the Markdown tables, the JSON and the gnuplot charts."""

import json
import os
import shutil
import subprocess

from .util import median

COLORS = {"direct": "#8c8c8c", "sluice": "#1f77b4", "nginx": "#2ca02c", "haproxy": "#ff7f0e",
          "caddy": "#17becf", "trafficserver": "#d62728", "envoy": "#9467bd"}
LABELS = {"direct": "direct (floor)", "sluice": "Sluice", "nginx": "nginx", "haproxy": "HAProxy",
          "caddy": "Caddy", "trafficserver": "Traffic Server", "envoy": "Envoy"}

CHART_LABELS = {"direct": "direct", "trafficserver": "ATS"}

METRICS = ("rps", "p50_ms", "p99_ms", "p999_ms", "cpu_us_per_req", "proxy_cpu_pct",
           "peak_rss_mib", "backend_cpu_us_per_req", "bytes_per_response", "foreign_cpu_pct",
           "foreign_on_proxy_cpus_pct",
           "target_rps")


def summarise(runs, scenarios, targets, skipped, not_applicable=None):
    """summary[scenario][target] = {status, runs_ok, runs_total, medians…, errors, failures}.
    not_applicable: {(scenario, target): reason} for cells that are not measured."""
    out = {}
    na = not_applicable or {}
    for sc in scenarios:
        out[sc] = {}
        for t in targets:
            if t in skipped:
                out[sc][t] = {"status": "skipped", "reason": skipped[t]}
                continue
            if (sc, t) in na:
                out[sc][t] = {"status": "skipped", "reason": na[(sc, t)]}
                continue
            mine = [r for r in runs if r["scenario"] == sc and r["target"] == t]
            ok = [r for r in mine if r["ok"]]
            s = {"runs_total": len(mine), "runs_ok": len(ok),
                 "failures": [f'rep {r["rep"]}: {r["reason"].splitlines()[0][:200]}'
                              for r in mine if not r["ok"]]}
            if not mine:
                s["status"] = "not run"
            elif not ok:
                s["status"] = "failed"
            else:
                s["status"] = "ok" if len(ok) == len(mine) else "partly failed"
                for m in METRICS:
                    vals = [r[m] for r in ok if r.get(m) is not None]
                    s[m] = median(vals) if vals else None
                s["rps_max"] = max(r["rps"] for r in ok)
                s["errors"] = sum(r["error_total"] for r in ok)
                s["requests"] = sum(r["requests"] for r in ok)
                kinds = {}
                for r in ok:
                    for k, v in r["errors"].items():
                        kinds[k] = kinds.get(k, 0) + v
                s["error_kinds"] = {k: v for k, v in kinds.items() if v}
            out[sc][t] = s
    return out


def _f(v, digits=0, suffix=""):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def _ms(v):
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _errors(s):
    if s["errors"] == 0:
        return "0"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["error_kinds"].items()))
    return f'**{s["errors"]}** ({kinds})'


def results_table(summary, scenarios, targets, titles):
    head = ("| scenario | target | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | proxy CPU % "
            "| peak RSS MiB | backend µs/req | other load % | errors | runs ok |")
    lines = [head, "|" + "---|" * 13]
    for sc in scenarios:
        for t in targets:
            s = summary[sc][t]
            name = LABELS.get(t, t)
            if s["status"] == "skipped":
                lines.append(f"| {titles[sc]} | {name} | skipped: {s['reason']} |" + " |" * 10)
                continue
            if s["status"] in ("failed", "not run"):
                why = s["failures"][0] if s["failures"] else s["status"]
                lines.append(f"| {titles[sc]} | {name} | **FAILED** ({why}) |" + " |" * 9 +
                             f" {s['runs_ok']}/{s['runs_total']} |")
                continue
            direct = t == "direct"
            lines.append(
                f"| {titles[sc]} | {name} | {_f(s['rps'])} | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} "
                f"| {_ms(s['p999_ms'])} | {'—' if direct else _f(s['cpu_us_per_req'], 1)} "
                f"| {'—' if direct else _f(s['proxy_cpu_pct'])} "
                f"| {'—' if direct else _f(s['peak_rss_mib'], 1)} "
                f"| {_f(s['backend_cpu_us_per_req'], 1)} | {_f(s['foreign_cpu_pct'])} | {_errors(s)} "
                f"| {s['runs_ok']}/{s['runs_total']}{'' if s['status'] == 'ok' else ' ⚠'} |")
    return "\n".join(lines)


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def ratio_table(summary, scenarios, targets, titles):
    peers = [t for t in targets if t not in ("sluice", "direct")]
    lines = ["| scenario | Sluice ÷ | req/s | CPU µs/req | p99 | p99.9 | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for sc in scenarios:
        me = summary[sc].get("sluice")
        for p in peers:
            s = summary[sc][p]
            if s["status"] == "skipped":
                continue
            if me is None:
                return "(Sluice was not part of this run: no ratios.)"
            if me["status"] == "skipped":
                lines.append(f"| {titles[sc]} | {LABELS[p]} | n/a (Sluice skipped) |  |  |  |  |")
                continue
            if me["status"] in ("failed", "not run") or s["status"] in ("failed", "not run"):
                who = "Sluice" if me["status"] in ("failed", "not run") else LABELS[p]
                lines.append(f"| {titles[sc]} | {LABELS[p]} | n/a (every {who} run failed) "
                             f"|  |  |  |  |")
                continue
            lines.append(f"| {titles[sc]} | {LABELS[p]} | {_ratio(me['rps'], s['rps'])} "
                         f"| {_ratio(me['cpu_us_per_req'], s['cpu_us_per_req'])} "
                         f"| {_ratio(me['p99_ms'], s['p99_ms'])} "
                         f"| {_ratio(me['p999_ms'], s['p999_ms'])} "
                         f"| {_ratio(me['peak_rss_mib'], s['peak_rss_mib'])} |")
    return "\n".join(lines)


def sanity_notes(summary, scenarios, targets, titles, closed_loop, rate_scenarios):
    """Things a reader should know before trusting a number."""
    notes = []
    for sc in scenarios:
        d = summary[sc].get("direct")
        for t in targets:
            s = summary[sc][t]
            name = f"{titles[sc]} / {LABELS.get(t, t)}"
            if s["status"] in ("failed", "partly failed"):
                notes.append(f"{name}: {s['runs_total'] - s['runs_ok']} of {s['runs_total']} runs "
                             f"failed: " + "; ".join(s["failures"]))
            if s["status"] not in ("ok", "partly failed"):
                continue
            if s["errors"]:
                notes.append(f"{name}: {s['errors']} errors over {s['requests']:,} requests "
                             f"({', '.join(f'{k} {v}' for k, v in s['error_kinds'].items())})")
            if t == "direct" or not d or d.get("status") not in ("ok", "partly failed"):
                continue
            # Against the best direct run: the floor itself varies from run to run.
            if sc in closed_loop and s["rps"] and d.get("rps_max") and s["rps"] > 1.05 * d["rps_max"]:
                notes.append(f"{name}: {s['rps']:,.0f} req/s is above every direct run (best "
                             f"{d['rps_max']:,.0f}); suspicious")
            bs, bd = s.get("bytes_per_response"), d.get("bytes_per_response")
            # (Jetty's echo body lists the request headers, which each proxy sets differently.)
            if sc != "jetty" and bs and bd and abs(bs - bd) > 0.05 * bd + 200:
                notes.append(f"{name}: {bs:,.0f} bytes per response against {bd:,.0f} direct")
            if sc in closed_loop and s.get("proxy_cpu_pct") is not None and s["proxy_cpu_pct"] < 85:
                notes.append(f"{name}: the proxy used {s['proxy_cpu_pct']:.0f}% of a core, so "
                             f"something else limited its req/s (the client/backend CPU, or other "
                             f"processes: {s.get('foreign_cpu_pct') or 0:.0f}% other load, "
                             f"{s.get('foreign_on_proxy_cpus_pct') or 0:.0f}% on the proxy's CPUs); "
                             f"CPU µs/req is the fairer comparison")
            if sc in rate_scenarios and s.get("rps") and s.get("target_rps") and \
                    s["rps"] < 0.95 * s["target_rps"]:
                notes.append(f"{name}: sustained {s['rps']:,.0f} req/s of the "
                             f"{s['target_rps']:,.0f} asked for")
    busy = [(sc, t, summary[sc][t].get("foreign_cpu_pct")) for sc in scenarios for t in targets
            if summary[sc][t].get("foreign_cpu_pct") is not None]
    noisy = [(sc, t, v) for sc, t, v in busy if v > 10]
    if noisy:
        worst = max(noisy, key=lambda x: x[2])
        notes.append(f"other processes used CPU during {len(noisy)} of {len(busy)} result cells "
                     f"(median > 10% of one core; worst {worst[2]:.0f}% in "
                     f"{titles[worst[0]]} / {LABELS.get(worst[1], worst[1])}): the machine was "
                     f"not idle, so absolute numbers are pessimistic and noisier")
    return notes


def special_sections(summary, scenarios, titles, special, startups):
    """Markdown for the 10k-route last÷first ratios, start-up times, the reload scenario and the
    idle-connections scenario ("" when none of them ran)."""
    out = []
    if "r10k-first" in scenarios and "r10k-last" in scenarios:
        out += ["## 10,000 routes: last match ÷ first match", "",
                "| proxy | CPU µs/req, first | CPU µs/req, last | last ÷ first | req/s first | "
                "req/s last |", "|---|---|---|---|---|---|"]
        for t, s1 in summary["r10k-first"].items():
            s2 = summary["r10k-last"][t]
            if t == "direct" or s1["status"] not in ("ok", "partly failed") or \
                    s2["status"] not in ("ok", "partly failed"):
                continue
            out.append(f"| {LABELS.get(t, t)} | {_f(s1['cpu_us_per_req'], 1)} "
                       f"| {_f(s2['cpu_us_per_req'], 1)} "
                       f"| {_ratio(s2['cpu_us_per_req'], s1['cpu_us_per_req'])} "
                       f"| {_f(s1['rps'])} | {_f(s2['rps'])} |")
        out.append("")
    if startups:
        variants = list(startups)
        names = []
        for v in variants:
            names += [n for n in startups[v] if n not in names]
        out += ["## Start-up time (process start → first 200 through it, ms)", "",
                "| proxy | " + " | ".join(f"{v} config" for v in variants) + " |",
                "|---|" + "---|" * len(variants)]
        for n in names:
            out.append(f"| {LABELS.get(n, n)} | " + " | ".join(
                str(startups[v].get(n, "—")) for v in variants) + " |")
        out.append("")
    rl = special.get("reload")
    if rl:
        out += ["## Reload of a 10,000-route configuration under load", "",
                "Start-up: process start → the last route answers 200. Reload: signal sent → "
                "the route the new configuration adds answers 200 (polled every 10 ms on new "
                "connections), four times, while wrk keeps 50 connections busy on the first route. "
                "RSS: all the proxy's processes, summed, before the first reload and 1 s after "
                "each; settled: once old workers have exited (nginx, HAProxy).", "",
                "| proxy | start-up ms | reload ms (4) | median reload ms | RSS MiB before → "
                "after 4 reloads | RSS MiB settled | requests under load | errors under load "
                "| note |",
                "|---|---|---|---|---|---|---|---|---|"]
        for n, r in rl.items():
            if "skipped" in r:
                out.append(f"| {LABELS.get(n, n)} | skipped: {r['skipped']} | | | | | | | |")
                continue
            if "reload_ms" not in r:
                out.append(f"| {LABELS.get(n, n)} | **FAILED**: {r.get('error')} | | | | | | | |")
                continue
            rss = r["rss_mib"]
            ld = r.get("load") or {}
            med = median(r["reload_ms"])
            out.append(
                f"| {LABELS.get(n, n)} | {r['startup_ms']:.0f} "
                f"| {', '.join(f'{x:.0f}' for x in r['reload_ms'])} | {_f(med)} "
                f"| {_f(rss[0], 1)} → {_f(rss[-1], 1)} ({' → '.join(_f(x, 1) for x in rss)}) "
                f"| {_f(r.get('rss_settled_mib'), 1)} | {_f(ld.get('requests'))} "
                f"| {ld.get('errors', '—')} "
                f"| {r.get('error', '')} |")
        out.append("")
    idle = special.get("idle")
    if idle:
        n = next((r["n"] for r in idle.values() if "n" in r), None)
        out += [f"## Idle keep-alive connections ({_f(n)} clients, one request each)", "",
                "RSS of all the proxy's processes, summed: before, with the connections open and "
                "idle (1 s after the last response), and 1 s after the client closed them all. "
                "Per connection = (idle − before) ÷ connections that got their response.", "",
                "| proxy | KiB per connection | RSS MiB before | with idle connections | after "
                "close | connections ok |", "|---|---|---|---|---|---|"]
        for name, r in idle.items():
            if "skipped" in r:
                out.append(f"| {LABELS.get(name, name)} | skipped: {r['skipped']} | | | | |")
            elif "error" in r:
                out.append(f"| {LABELS.get(name, name)} | **FAILED**: {r['error']} | | | | |")
            else:
                out.append(f"| {LABELS.get(name, name)} | {r['kib_per_conn']:.2f} "
                           f"| {r['rss_before_mib']:.1f} | {r['rss_idle_mib']:.1f} "
                           f"| {r['rss_after_close_mib']:.1f} | {r['ok']:,} |")
        out.append("")
    return "\n".join(out).rstrip()


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")


# --------------------------------------------------------------------------------------------
# Charts: one PNG per metric, one panel per scenario (each with its own y scale), one bar per
# target. Targets with no result (skipped, failed) get no bar and are named under the panel.


def _gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chart(path, title, metric, summary, scenarios, targets, titles, fmt):
    if shutil.which("gnuplot") is None:
        return "gnuplot not on PATH"
    n = len(scenarios)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    g = [f"set terminal pngcairo size {420 * cols},{330 * rows + 40} font 'DejaVu Sans,10'",
         f"set output {_gp_str(path)}",
         "set style fill solid 0.85 border -1",
         "set boxwidth 0.7",
         "set yrange [0:*]",
         "set grid ytics lc rgb '#dddddd'",
         "set xtics nomirror scale 0",
         "set ytics nomirror",
         "set border 3",
         "unset key",
         "set offsets 0.5, 0.5, graph 0.12, 0",
         f"set multiplot layout {rows},{cols} title {_gp_str(title)} font ',12'"]
    for sc in scenarios:
        rows_data, missing = [], []
        for t in targets:
            s = summary[sc][t]
            v = s.get(metric) if s["status"] in ("ok", "partly failed") else None
            if metric in ("cpu_us_per_req", "peak_rss_mib") and t == "direct":
                continue
            if v is None:
                missing.append(f"{LABELS.get(t, t)}: {s['status']}")
                continue
            rows_data.append((CHART_LABELS.get(t, LABELS.get(t, t)), v, COLORS.get(t, "#333333")))
        g.append(f"set title {_gp_str(titles[sc])}")
        g.append(f"set xlabel {_gp_str('; '.join(missing))} font ',8' tc rgb '#aa0000'")
        if not rows_data:
            g.append("set label 1 'no results' at graph 0.5, 0.5 center")
            g.append("plot [0:1] [0:1] NaN")
            g.append("unset label 1")
            continue
        g.append("$d << EOD")
        for label, v, color in rows_data:
            g.append(f'"{label}" {v} 0x{color[1:]}')
        g.append("EOD")
        g.append(f"plot $d using 0:2:3:xtic(1) with boxes lc rgb variable, "
                 f"$d using 0:2:(sprintf('{fmt}', $2)) with labels offset 0,0.6 font ',9'")
    g.append("unset multiplot")
    script = path + ".gp"
    with open(script, "w") as f:
        f.write("\n".join(g) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
    os.unlink(script)
    if r.returncode != 0:
        return f"gnuplot failed: {r.stderr.strip()[-300:]}"
    return None
