"""Sudoku decoders that stop once their check is confident: the VMD against MDM (issue 12).

A decoder that checks its candidates (``--select pseudo-likelihood``) can try them one at a time
and stop at the first whose score reaches a threshold, or after at most N of them: an easy puzzle
then costs one decode and its check, and the passes saved go to the puzzles the check doubts
(N = all is pure stopping; no reachable threshold is the fixed-budget decoder of N candidates).
With ``--give-up`` a decoder may also stop a puzzle whose first 1 or 2 candidates all score
below a level, so that puzzles no candidate solves stop spending the cap.
This script decodes every candidate once, in the order such a decoder tries them, and keeps each
one's selection score, its repeats and whether it is a valid grid. From these it computes exactly
what the decoder keeps and spends at each setting (``vmd_pyro.sampling.stop_when_confident``) and
traces each decoder's best solve rate against its mean passes per puzzle.

- VMD: its values of z from the most probable under its prior (``--z-strategy enumerate
  --z-values K``), each decoded with argmax tokens; score = check + log p(z). With
  ``--vmd-samples M`` it then tries M grids with sampled tokens under the value of z whose
  candidate scored best (known once all K are checked, so the order stays one a decoder can follow).
- MDM: its argmax decode first, then ``--samples`` grids with sampled tokens; score = check.
Both check each different grid of a puzzle once (``check_distinct``). One setting serves all
puzzles of a decoder; the curves compare the two at equal mean passes. Read off the curves, a lead
is the best of many settings chosen on the puzzles it is measured on, so the script also sets each
decoder's threshold and cap for a budget of mean passes on half of the puzzles (even or odd lines)
and measures them on the other half: every puzzle is then decoded at a setting chosen without it.
``--from-json`` redoes these analyses from a saved ``stopping.json``, without decoding.

    python experiments/sudoku_stopping.py --vmd VMD.pt --mdm MDM.pt \\
        --puzzles results/sudoku_hard/select/test_data0.txt --out-dir DIR
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)

from vmd_pyro import cli
from vmd_pyro.datasets import sudoku
from vmd_pyro.experiment import load_script, provenance, resolve_device, write_json
from vmd_pyro.metrics import paired_difference
from vmd_pyro.sampling import (ORDERS, counting_passes, decode, passes_after_each_try,
                               pseudo_log_likelihood, stop_when_confident)

load_sudoku_program = load_script("sudoku").load_sudoku_program  # refuses a non-Sudoku model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--vmd", help="VMD checkpoint with a discrete prior")
    parser.add_argument("--mdm", help="MDM checkpoint")
    parser.add_argument("--puzzles", help="puzzle file (sudoku.py's format)")
    parser.add_argument("--from-json", type=Path,
                        help="a stopping.json written before: analyse its candidates again "
                             "(the decoding options are then read from it)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[15, 20, 25, 30, 40, 60, 80],
                        help="mean passes per puzzle at which thresholds are set on one half of "
                             "the puzzles and measured on the other")
    parser.add_argument("--out-dir", required=True, type=Path,
                        help="writes stopping.json (every candidate's score, repeats and "
                             "validity; both curves) and stopping.png here")
    parser.add_argument("--limit", type=int, default=0, help="only the first N puzzles (0: all)")
    parser.add_argument("--nfe", type=int, default=5, help="denoiser calls per decode")
    parser.add_argument("--order", default="top-prob-margin", choices=ORDERS,
                        help="decoding order")
    parser.add_argument("--samples", type=int, default=63,
                        help="MDM's sampled grids after its argmax decode")
    parser.add_argument("--vmd-samples", type=int, default=0,
                        help="the VMD's sampled grids after its K argmax decodes, under the value "
                             "of z that scored best (0: none)")
    parser.add_argument("--mdm-from", type=Path,
                        help="take MDM's candidates from this stopping.json (same puzzles, seed "
                             "and decoding options) instead of decoding them again; the VMD's "
                             "argmax candidates must then reproduce its scores")
    parser.add_argument("--check-groups", type=int, default=5,
                        help="passes of one check (cells masked again in this many groups)")
    parser.add_argument("--thresholds", type=int, default=100,
                        help="thresholds per decoder, at quantiles of its scores (each tried with "
                             "every cap on the candidates: 1, 2, 3, 4, 6, 8, 12, ... up to all)")
    parser.add_argument("--give-up", action="store_true",
                        help="also try stopping a puzzle whose first 1 or 2 candidates all score "
                             "below a level (quantiles of their best score): the passes that a "
                             "puzzle no candidate solves would spend go to the others")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=250, help="puzzles decoded at a time")
    return parser


def first_copies(grids: torch.Tensor) -> torch.Tensor:
    """(B, C): for each candidate, the index of the first candidate of its row with its grid."""
    return (grids.unsqueeze(2) == grids.unsqueeze(1)).all(-1).long().argmax(-1)


def decode_all(program, puzzles, args, generator, **decoder):
    """Every candidate of ``decoder`` (sudoku.fill_puzzles options): (grids, scores, passes)."""
    grids, scores = [], []
    with counting_passes(program) as passes:
        sudoku.fill_puzzles(program, puzzles, nfe=args.nfe, order=args.order, generator=generator,
                            batch_size=args.batch_size, select="pseudo-likelihood",
                            check_groups=args.check_groups, check_distinct=True,
                            on_candidates=lambda g: grids.append(g.cpu()),
                            on_scores=lambda s: scores.append(s.cpu()), **decoder)
    return torch.cat(grids), torch.cat(scores), passes["denoiser"]


def vmd_candidates(program, puzzles, args, generator):
    values = program.cfg.components
    grids, scores, passes = decode_all(program, puzzles, args, generator, fill="argmax",
                                       z_strategy="enumerate", z_values=values)
    # every value tried, each different grid checked once: what the stopping decoder spends when
    # no threshold is reached, measured
    _, spent = stop_when_confident(scores, grids, float("inf"), decode_passes=args.nfe,
                                   check_passes=args.check_groups)
    if int(spent.sum()) != passes:
        raise RuntimeError(f"passes counted {passes}, computed {int(spent.sum())}")
    if args.vmd_samples:
        grids, scores = sampled_under_best_z(program, puzzles, grids, scores, args, generator)
    return grids, scores


def sampled_under_best_z(program, puzzles, grids, scores, args, generator):
    """The K argmax candidates of ``vmd_candidates`` followed by ``args.vmd_samples`` grids with
    sampled tokens under the value of z whose candidate scored best. As ``check_distinct`` does,
    each different grid is checked once and a repeat's score is that check plus its own log p(z)."""
    device = next(program.parameters()).device
    batch, count = scores.shape
    log_prior, values = [], []
    with torch.no_grad():
        for chunk in puzzles.split(args.batch_size):  # the values in the order enumerate took them
            lp, v = program.prior_dist(chunk.to(device)).logits.double().topk(count, -1)
            log_prior.append(lp.cpu())
            values.append(v.cpu())
    log_prior, values = torch.cat(log_prior), torch.cat(values)
    best = scores.argmax(-1)
    z = values[torch.arange(batch), best]
    rows = puzzles.repeat_interleave(args.vmd_samples, 0)
    chunk = args.batch_size * count  # as many rows as one batch of the enumerated decodes
    sampled = []
    with torch.no_grad():
        for x, zz in zip(rows.split(chunk), z.repeat_interleave(args.vmd_samples).split(chunk)):
            decoded, _ = decode(program, x.to(device), nfe=args.nfe, order=args.order,
                                fill="sample", z_strategy="fixed", generator=generator,
                                z=zz.to(device))
            sampled.append(decoded.x.cpu())
    every = torch.cat([grids, torch.cat(sampled).view(batch, args.vmd_samples, -1)], 1)
    copies = first_copies(every)
    check = torch.cat([scores - log_prior, torch.zeros(batch, args.vmd_samples,
                                                       dtype=scores.dtype)], 1)
    fresh = copies == torch.arange(every.shape[1])          # a grid no earlier candidate holds
    fresh[:, :count] = False                                # the argmax ones are checked already
    puzzle, _ = fresh.nonzero(as_tuple=True)
    with torch.no_grad():
        checked = [pseudo_log_likelihood(program, x.to(device), g.to(device), zz.to(device),
                                          args.check_groups, generator).cpu()
                   for x, g, zz in zip(puzzles[puzzle].split(args.batch_size),
                                       every[fresh].split(args.batch_size),
                                       z[puzzle].split(args.batch_size))]
    if checked:
        check[fresh] = torch.cat(checked).to(check.dtype)
    own_prior = torch.cat([log_prior, log_prior[torch.arange(batch), best].unsqueeze(1)
                           .expand(batch, args.vmd_samples)], 1)
    return every, check.gather(1, copies) + own_prior


def mdm_candidates(program, puzzles, args, generator):
    device = next(program.parameters()).device
    argmax = sudoku.fill_puzzles(program, puzzles, nfe=args.nfe, order=args.order, fill="argmax",
                                 batch_size=args.batch_size)
    with torch.no_grad():
        first = torch.cat([pseudo_log_likelihood(program, x.to(device), g.to(device), None,
                                                 args.check_groups, generator).cpu()
                           for x, g in zip(puzzles.split(args.batch_size),
                                           argmax.split(args.batch_size))])
    grids, scores, _ = decode_all(program, puzzles, args, generator, fill="sample",
                                  candidates=args.samples)
    grids = torch.cat([argmax.unsqueeze(1), grids], 1)
    scores = torch.cat([first.unsqueeze(1), scores], 1)
    # a sample that repeats the argmax grid shares its check, as a sequential decoder would
    return grids, scores.gather(1, first_copies(grids))


CAPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # most candidates tried, up to all
GIVE_UP_AFTER = (1, 2)     # --give-up: tries after which a puzzle that looks hopeless stops
GIVE_UP_LEVELS = 8         # ... at these quantiles (5% to 60%) of its best score by then


def give_up_rules(scores, args) -> list[dict | None]:
    """The ways of giving up to try: never (None), and with ``args.give_up`` after each of
    GIVE_UP_AFTER tries whose best score is below one of GIVE_UP_LEVELS quantiles of it."""
    rules = [None]
    for after in GIVE_UP_AFTER if args.give_up else ():
        best = scores[:, :after].max(-1).values
        rules += [{"after": after, "below": level} for level in torch.quantile(
            best, torch.linspace(0.05, 0.6, GIVE_UP_LEVELS, dtype=torch.float64)).tolist()]
    return rules


def stop_at(scores, copies, point: dict, args, spent=None):
    """(kept, passes) of the stopping decoder at one setting of :func:`settings`."""
    give_up = point.get("give_up") or {}
    return stop_when_confident(scores, copies.unsqueeze(-1), point["threshold"],
                               decode_passes=args.nfe, check_passes=args.check_groups,
                               max_candidates=point["max_candidates"],
                               give_up_after=give_up.get("after"),
                               give_up_below=give_up.get("below", float("-inf")), spent=spent)


def settings(scores, copies, valid, args) -> list[dict]:
    """The stopping decoder at each threshold (quantiles of the scores, and none reachable), each
    cap on the candidates tried and each way of giving up (:func:`give_up_rules`): its mean
    passes, solve rate and solved puzzles."""
    count = scores.shape[1]
    levels = torch.quantile(scores.flatten(), torch.linspace(0, 1, args.thresholds,
                                                             dtype=torch.float64)).tolist()
    spent = passes_after_each_try(copies.unsqueeze(-1), decode_passes=args.nfe,
                                  check_passes=args.check_groups)   # once, for every setting
    rules = give_up_rules(scores, args)
    points = []
    for cap in [c for c in CAPS if c < count] + [count]:
        for threshold in levels + [float("inf")]:
            for give_up in rules:
                point = {"threshold": threshold, "max_candidates": cap, "give_up": give_up}
                kept, passes = stop_at(scores, copies, point, args, spent)
                solved = valid[torch.arange(len(kept)), kept]
                points.append({**point, "passes": float(passes.double().mean()),
                               "solve_rate": float(solved.double().mean()), "solved": solved})
    return points


def perfect_check_rate(copies, valid, budget: float, *, decode_passes: int,
                       check_passes: int) -> float:
    """The largest share of puzzles any stopping rule could solve with these candidates, tried in
    this order, at ``budget`` mean passes per puzzle: a bound for the decoders here. Each puzzle
    tries at least one candidate and checks every different grid it tries; a check that knew
    validity would stop a puzzle at its first valid grid, and spending the passes beyond the first
    try on the puzzles that need the fewest solves the most. That allocation knows in advance
    which puzzles no candidate solves, so the bound includes foresight no decoder has.
    ``copies`` and ``valid`` (B, C), as :func:`candidates_of` gives them."""
    spent = passes_after_each_try(copies.unsqueeze(-1), decode_passes=decode_passes,
                                  check_passes=check_passes)
    first = valid.long().argmax(-1)
    cost = spent[torch.arange(len(first)), first][valid.any(-1)]   # of the puzzles it can solve
    extra = (cost - decode_passes - check_passes).sort().values.cumsum(0)
    return int((extra <= (budget - decode_passes - check_passes) * len(first)).sum()) / len(first)


def curve(points: list[dict]) -> list[dict]:
    """The settings that no cheaper one solves as many with: solve rate against mean passes."""
    front = []
    for point in sorted(points, key=lambda p: (p["passes"], -p["solve_rate"])):
        if not front or point["solve_rate"] > front[-1]["solve_rate"]:
            front.append(point)
    return front


def lead_row(vmd_solved, vmd_passes: float, mdm_solved, mdm_passes: float) -> dict:
    """The VMD against MDM on the same puzzles: both costs and rates, the paired difference."""
    diff = paired_difference(vmd_solved, mdm_solved)
    return {"vmd_passes": vmd_passes, "vmd_solve_rate": diff["rate_a"],
            "mdm_passes": mdm_passes, "mdm_solve_rate": diff["rate_b"],
            "lead": diff["difference"], "lead_se": diff["paired_standard_error"],
            "mcnemar_p": diff["mcnemar_p"]}


def leads(vmd: list[dict], mdm: list[dict]) -> list[dict]:
    """Each VMD point against MDM's best point of no more mean passes (paired by puzzle)."""
    rows = []
    for v in vmd:
        cheaper = [m for m in mdm if m["passes"] <= v["passes"]]
        if not cheaper:
            continue
        m = max(cheaper, key=lambda p: p["solve_rate"])
        rows.append(lead_row(v["solved"], v["passes"], m["solved"], m["passes"]))
    return rows


def held_out(scores, copies, valid, args) -> dict:
    """For each budget in ``args.budgets``: per puzzle (solved, passes) with each half's threshold
    and cap set on the other half, the best solve rate there at no more mean passes than the
    budget; None for a budget below one decode and its check."""
    halves = [torch.arange(len(scores)) % 2 == h for h in (0, 1)]
    fitted = [settings(scores[h], copies[h], valid[h], args) for h in halves]
    outcome = {}
    for budget in args.budgets:
        solved = torch.zeros(len(scores), dtype=torch.bool)
        passes = torch.zeros(len(scores), dtype=torch.float64)
        for points, use in zip(fitted, halves[::-1]):
            within = [p for p in points if p["passes"] <= budget]
            if not within:
                outcome[budget] = None
                break
            best = max(within, key=lambda p: p["solve_rate"])
            kept, spent = stop_at(scores[use], copies[use], best, args)
            solved[use] = valid[use][torch.arange(len(kept)), kept]
            passes[use] = spent.double()
        else:
            outcome[budget] = solved, passes
    return outcome


def held_out_leads(data: dict, args) -> list[dict]:
    """The VMD against MDM at each of ``args.budgets``, settings chosen on the other half."""
    return lead_rows(*(held_out(*candidates_of(data[name]), args) for name in ("vmd", "mdm")))


def lead_rows(vmd: dict, mdm: dict) -> list[dict]:
    """:func:`lead_row` at each budget both :func:`held_out` outcomes reach."""
    rows = []
    for budget in vmd:
        if vmd[budget] is None or mdm[budget] is None:
            continue
        (v, vp), (m, mp) = vmd[budget], mdm[budget]
        rows.append({"budget": budget, **lead_row(v, float(vp.mean()), m, float(mp.mean()))})
    return rows


def candidates_of(record: dict):
    """(scores, first copies, valid) of one decoder's record in stopping.json: per puzzle, a
    string of numbers and a string of flags (:func:`candidate_record`)."""
    def numbers(rows, kind):
        return [[kind(v) for v in row.split()] for row in rows]
    return (torch.tensor(numbers(record["scores"], float), dtype=torch.float64),
            torch.tensor(numbers(record["first_copy"], int)),
            torch.tensor([[c == "1" for c in row] for row in record["valid"]]))


def plot(vmd, mdm, out: Path, title: str, vmd_samples: int = 0) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    vmd_label = "VMD: values of z, most probable first" + (
        f", then {vmd_samples} sampled grids" if vmd_samples else "")
    for points, label in ((vmd, vmd_label),
                          (mdm, "MDM: argmax, then sampled grids")):
        ax.plot([p["passes"] for p in points], [100 * p["solve_rate"] for p in points], ".-",
                label=label, markersize=3)
    ax.set(xlabel="mean denoiser passes per puzzle (decodes and checks)", xscale="log",
           ylabel="solve rate (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def decode_candidates(args) -> dict:
    """Decode every candidate of both decoders: the record that stopping.json keeps."""
    if args.samples < 0 or args.vmd_samples < 0:
        raise ValueError("--samples and --vmd-samples must be at least 0")
    device = resolve_device(args.device)
    puzzles = sudoku.to_tokens(sudoku.read_puzzles(args.puzzles)[0])
    vmd = load_sudoku_program(args.vmd, device)
    mdm = load_sudoku_program(args.mdm, device)
    if not vmd.has_latent or vmd.prior.support != "discrete":
        raise ValueError(f"{args.vmd} has no discrete z to enumerate")
    if mdm.has_latent:
        raise ValueError(f"{args.mdm} is not an MDM")
    if args.limit:
        puzzles = puzzles[:args.limit]
    generator = torch.Generator(device=device).manual_seed(args.seed)
    result = {"puzzles": args.puzzles, "num_puzzles": len(puzzles), "vmd_checkpoint": args.vmd,
              "mdm_checkpoint": args.mdm, "nfe": args.nfe, "order": args.order,
              "samples": args.samples, "vmd_samples": args.vmd_samples,
              "check_groups": args.check_groups, **provenance(args.seed)}
    earlier = earlier_record(args, len(puzzles)) if args.mdm_from else None
    for name, program, candidates in (("vmd", vmd, vmd_candidates), ("mdm", mdm, mdm_candidates)):
        if earlier is not None and name == "mdm":
            result["mdm"] = {k: earlier["mdm"][k] for k in ("scores", "first_copy", "valid")}
            result["mdm_from"] = str(args.mdm_from)
            continue
        start = time.perf_counter()
        grids, scores = candidates(program, puzzles, args, generator)
        result[name] = {**candidate_record(scores, first_copies(grids),
                                           sudoku.valid_candidates(puzzles, grids)),
                        "decode_seconds": time.perf_counter() - start}
    if earlier is not None:  # the same seed decodes the VMD's argmax candidates first, as before
        before, now = candidates_of(earlier["vmd"]), candidates_of(result["vmd"])
        count = vmd.cfg.components  # its argmax candidates, one per value of z
        # a near-tie in a decode can fall the other way in another run (other batches, threads)
        differ = ((now[0][:, :count] - before[0][:, :count]).abs().gt(1e-4).any(-1)
                  | now[2][:, :count].ne(before[2][:, :count]).any(-1))
        result["vmd_rows_not_reproduced"] = int(differ.sum())
        if differ.double().mean() > 0.01:
            raise RuntimeError(f"the VMD's argmax candidates of {int(differ.sum())} puzzles differ "
                               f"from {args.mdm_from}'s: not the same decode")
    return result


def earlier_record(args, count: int) -> dict:
    """The stopping.json of ``--mdm-from``, refused unless it decoded the same way (records
    written before the checkpoints had keys of their own name them in their command)."""
    earlier = json.loads(args.mdm_from.read_text())
    ours = {"puzzles": args.puzzles, "num_puzzles": count, "nfe": args.nfe, "order": args.order,
            "samples": args.samples, "check_groups": args.check_groups, "seed": args.seed}
    differ = [k for k, v in ours.items() if earlier.get(k) != v]
    command = earlier["command"].split()

    def checkpoint(name: str) -> str | None:
        if f"{name}_checkpoint" in earlier:
            return earlier[f"{name}_checkpoint"]
        return command[command.index(f"--{name}") + 1] if f"--{name}" in command else None

    differ += [f"{name} checkpoint" for name, path in (("vmd", args.vmd), ("mdm", args.mdm))
               if checkpoint(name) != path]
    if differ:
        raise ValueError(f"{args.mdm_from} was decoded with other {', '.join(differ)}")
    return earlier


def candidate_record(scores, copies, valid) -> dict:
    """One decoder's candidates as stopping.json keeps them, one string per puzzle."""
    return {"scores": [" ".join(f"{v:.6f}" for v in row) for row in scores.tolist()],
            "first_copy": [" ".join(map(str, row)) for row in copies.tolist()],
            "valid": ["".join("1" if v else "0" for v in row) for row in valid.tolist()]}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.from_json:
            result = json.loads(args.from_json.read_text())
            args.nfe, args.check_groups = result["nfe"], result["check_groups"]
            result["analysed"] = provenance(None)  # this analysis's command and commit
            for name in ("vmd", "mdm"):
                result[name].update(candidate_record(*candidates_of(result[name])))
        elif None in (args.vmd, args.mdm, args.puzzles):
            raise ValueError("give --vmd, --mdm and --puzzles, or --from-json")
        else:
            result = decode_candidates(args)
    except cli.USER_ERRORS as err:
        return cli.report(err)
    for name in ("vmd", "mdm"):
        d = result[name]
        d["curve"] = curve(settings(*candidates_of(d), args))
        top = d["curve"][-1]
        give_up = top["give_up"] and (f", giving up after {top['give_up']['after']} below "
                                      f"{top['give_up']['below']:.4g}")
        print(f"{name}: at best {top['solve_rate']:.4f} at {top['passes']:.1f} mean passes "
              f"(threshold {top['threshold']:.4g}, at most {top['max_candidates']} candidates"
              f"{give_up or ''})")
    result["leads"] = leads(result["vmd"]["curve"], result["mdm"]["curve"])
    best = max(result["leads"], key=lambda r: r["lead"])
    print(f"largest lead on the curves: VMD {best['vmd_solve_rate']:.4f} at "
          f"{best['vmd_passes']:.1f} passes against MDM {best['mdm_solve_rate']:.4f} at "
          f"{best['mdm_passes']:.1f}: {100 * best['lead']:+.1f} ± {100 * best['lead_se']:.1f} points")
    result["held_out"] = held_out_leads(result, args)
    print("threshold and cap set on the other half of the puzzles:")
    for r in result["held_out"]:
        print(f"  budget {r['budget']:g}: VMD {r['vmd_solve_rate']:.4f} at {r['vmd_passes']:.1f} "
              f"passes, MDM {r['mdm_solve_rate']:.4f} at {r['mdm_passes']:.1f}: "
              f"{100 * r['lead']:+.1f} ± {100 * r['lead_se']:.1f} points (p {r['mcnemar_p']:.1g})")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vmd", "mdm"):  # the puzzles each point solves: recomputed, not kept
        for point in result[name]["curve"]:
            point.pop("solved")
    write_json(args.out_dir / "stopping.json", result)
    plot(result["vmd"]["curve"], result["mdm"]["curve"], args.out_dir / "stopping.png",
         f"Stopping at a threshold or after N candidates, NFE {args.nfe}, "
         f"{result['num_puzzles']} puzzles", result.get("vmd_samples", 0))
    print(f"wrote {args.out_dir / 'stopping.json'} and stopping.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
