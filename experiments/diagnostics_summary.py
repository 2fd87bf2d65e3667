#!/usr/bin/env python
"""Collects DIR/*/diagnostics.json into DIR/summary.md: per prior and
mask rate, the PSIS k-hat of the guide, its distance to the reference posterior and the latent usage.

    python experiments/diagnostics_summary.py DIR      # e.g. runs/diagnostics
"""
import argparse
import json
import statistics
from pathlib import Path

from vmd_pyro import cli
from vmd_pyro.experiment import markdown_table


def rows_for(report):
    gvr, examples = report["guide_vs_reference"], report["examples"]
    for usage in report["latent_usage"]["per_mask_rate"]:
        idx = [e["example"] for e in examples if e["mask_rate"] == usage["mask_rate"]]
        khat = [examples[b]["psis_khat"] for b in idx if examples[b]["psis_khat"] is not None]
        row = {"prior": report["prior"], "t": usage["mask_rate"],
               "k-hat median": statistics.median(khat) if khat else None,
               "k-hat max": max(khat) if khat else None,
               "KL(q||prior)": usage["kl_total"], "I(z;x)": usage["mutual_information"],
               "active units": usage["active_units"]}
        if "kl_exact" in gvr:  # k-hat is degenerate for a K-valued z: the exact weight bound instead
            row["k-hat median"] = row["k-hat max"] = None
            row["max p/q"] = max(report["max_weight_ratio"][b] for b in idx)
            row["guide vs reference"] = f"{statistics.mean(gvr['kl_exact'][b] for b in idx):.1e}"
        else:
            row["guide vs reference"] = statistics.median(gvr["energy_distance"][b] for b in idx)
            row["floor"] = statistics.median(gvr["energy_floor"][b] for b in idx)
            row["KL gap"] = statistics.median(gvr["kl_gap"][b] for b in idx)
        yield row


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="the folder diagnostics_results.sh wrote (DIR/<prior>/...)")
    out = Path(parser.parse_args(argv).dir)
    if not out.is_dir():
        cli.fail(f"{str(out)!r} is not a folder of diagnose.py outputs (DIR/<prior>/diagnostics.json)")
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*/diagnostics.json"))]
    rows = [row for report in reports for row in rows_for(report)]
    columns = ["prior", "t", "k-hat median", "k-hat max", "max p/q", "guide vs reference", "floor",
               "KL gap",
               "KL(q||prior)", "I(z;x)", "active units"]
    lines = ["# Posterior diagnostics on quad-d1 (from `experiments/diagnostics_results.sh`)", "",
             markdown_table(rows, columns), "",
             "Per mask rate t: k-hat over the 10 held-out pairs (one per data sequence). "
             "`guide vs reference`: continuous z, median energy distance between guide and NUTS "
             "draws (`floor`: the same between two halves of the NUTS chains; `KL gap`: median "
             "IW-minus-ELBO lower bound on KL(q || p)); discrete z, mean exact KL(q || p) in nats, and "
             "instead of k-hat (degenerate with at most K distinct weights) the exact largest "
             "importance weight p(z|x0,xt)/q(z|x0,xt). "
             "KL(q||prior), I(z;x) (nats) and active units over 500 pairs per rate.", ""]
    for r in reports:
        ref = r["reference"]
        mcmc = (f"R-hat max {ref['rhat_max']:.3f}, bulk ESS min {ref['ess_bulk_min']:.0f}, "
                f"divergences {ref['divergences']}" if "rhat_max" in ref else ref["method"])
        lines.append(f"- {r['prior']}: reference {mcmc}; active units {r['active_units']} of "
                     f"{r['latent_usage']['units']}; commit {r['git_commit']}, seed {r['seed']}, "
                     f"wall {r['wall_seconds']:.0f} s ({r['threads']} thread)")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
