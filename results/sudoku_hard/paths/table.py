"""Print this folder's tables from its JSON files (and the session-18/19 files they are compared
with). Run from the repository root: python results/sudoku_hard/paths/table.py"""
import functools
import json

from vmd_pyro.datasets import sudoku
from vmd_pyro.metrics import paired_difference

HERE, HARD = "results/sudoku_hard/paths/", "results/sudoku_hard/"


@functools.cache  # the tables read many files several times
def load(path):
    with open(path) as f:
        return json.load(f)


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def training_rows(path):
    """The run's own decodes with one z from the prior (--z-strategy fixed): test, 17-29 split."""
    runs = {r["split"]: r for r in load(path)["runs"]}
    return runs["test"], runs["test-clues"]


def latent_at_one(path):
    d = load(path)
    return [r for r in d["per_mask_rate"] if r["mask_rate"] == 1][0]["mutual_information"]


def train_seconds(*paths):
    return sum(load(p)["runs"][0]["train_seconds"] for p in paths)


def updates(*paths):
    return sum(load(p)["runs"][0]["history"][-1]["step"] for p in paths)


def one_decode(path):
    runs = {r["split"]: r for r in load(path)["runs"] if r["nfe"] == 5}
    return pct(runs["test"]["solve_rate"]), pct(runs["test-clues"]["solve_rate"])


def checked(path):
    return pct(load(path)["solve_rate"]) if path else "-"


def passes(path):
    return load(path)["network_passes_per_puzzle"]["denoiser"]


def solved_passes(path):
    return f"{checked(path)} / {passes(path):.0f}"


def budget_table(title, checked_splits, rows):
    """One row per model: training time and updates summed over its runs, its last run's own
    decode, and the decodes at 160 passes (one file per split in ``checked_splits``)."""
    print()
    print(f"| {title} | training after `mdm.pt`: seconds / updates | one decode (MDM) or one z "
          f"from the prior (VMD): test / 17-29 | 160 passes, checked: {checked_splits} |")
    print("|---|---|---|---|")
    for label, trains, *decodes in rows:
        print(f"| {label} | {train_seconds(*trains):,.0f} / {updates(*trains):,} | "
              f"{' / '.join(one_decode(trains[-1]))} | {' / '.join(map(checked, decodes))} |")


ROWS = [  # label, train JSON, test solve JSON, 17-29 solve JSON, latent JSON
    ("VMD K = 16, seed 0, as trained (sessions 18-19)",
     HARD + "warm/train_warm-exact16-film-steps5-top-prob-margin.json",
     HARD + "select/coverage/test_enumerate-pseudo-likelihood_warm-exact16_nfe5.json",
     HARD + "select/coverage/enumerate-pseudo-likelihood_warm-exact16_nfe5.json",
     HARD + "select/test_latent_warm-exact16-film-steps5-top-prob-margin.json"),
    ("+ 3,300 s of `steps` (z per step), batch 64",
     HERE + "train_ft-exact16-steps-b64.json",
     HERE + "test_enumerate-pseudo-likelihood_ft-exact16-steps-b64_nfe5.json",
     HERE + "few_enumerate-pseudo-likelihood_ft-exact16-steps-b64_nfe5.json",
     HERE + "latent_ft-exact16-steps-b64.json"),
    ("+ 3,300 s of `paths` (z held through the path), batch 16",
     HERE + "train_ft-exact16-paths-b16.json",
     HERE + "test_enumerate-pseudo-likelihood_ft-exact16-paths-b16_nfe5.json",
     HERE + "few_enumerate-pseudo-likelihood_ft-exact16-paths-b16_nfe5.json",
     HERE + "latent_ft-exact16-paths-b16.json"),
]

print("| model | updates | one z from the prior: test / 17-29 | every z, checked: test / 17-29 "
      "| a valid grid offered: test / 17-29 | I(z; x), all blanks masked |")
print("|---|---|---|---|---|---|")
for label, train, test, few, latent in ROWS:
    one_test, one_few = training_rows(train)
    steps = one_test["history"][-1]["step"]
    t, f = load(test), load(few)
    print(f"| {label} | {steps} | {pct(one_test['solve_rate'])} / {pct(one_few['solve_rate'])} "
          f"| {pct(t['solve_rate'])} / {pct(f['solve_rate'])} "
          f"| {pct(t['candidates_offered']['any_candidate_solves'])} / "
          f"{pct(f['candidates_offered']['any_candidate_solves'])} | {latent_at_one(latent):.3f} nats |")

SEED1 = [  # seed 1: the paths fine-tune alone (no steps control was run for this seed)
    ("VMD K = 16, seed 1, as trained (session 19)",
     HARD + "warm/train_warm-exact16-film-steps5-seed1-top-prob-margin.json",
     HARD + "select/test_enumerate-pseudo-likelihood_warm-exact16-seed1_nfe5.json"),
    ("+ 3,300 s of `paths`, batch 16",
     HERE + "train_ft-exact16-paths-b16-seed1.json",
     HERE + "test_enumerate-pseudo-likelihood_ft-exact16-paths-b16-seed1_nfe5.json")]
print()
print("| seed 1 | updates | one z from the prior: test / 17-29 | every z, checked: test |")
print("|---|---|---|---|")
for label, train, test in SEED1:
    one_test, one_few = training_rows(train)
    print(f"| {label} | {one_test['history'][-1]['step']} | {pct(one_test['solve_rate'])} / "
          f"{pct(one_few['solve_rate'])} | {pct(load(test)['solve_rate'])} |")

print()
print("| MDM control | updates | one decode: test / 17-29 | 16 sampled grids, the same check: "
      "test / 17-29 | a valid grid offered: test / 17-29 |")
print("|---|---|---|---|---|")
for label, train, test, few in [
        ("as trained (sessions 14-19)",
         HARD + "warm/train_warm-mdm-steps5-top-prob-margin.json",
         HARD + "select/coverage/test_candidates16-t1-pseudo-likelihood_warm-mdm_nfe5.json",
         HARD + "select/coverage/candidates16-pseudo-likelihood_warm-mdm_nfe5.json"),
        ("+ 3,300 s of `steps`, batch 64",
         HERE + "train_ft-mdm-steps-b64.json",
         HERE + "test_candidates16-t1-pseudo-likelihood_ft-mdm-steps-b64_nfe5.json",
         HERE + "few_candidates16-t1-pseudo-likelihood_ft-mdm-steps-b64_nfe5.json")]:
    t, f = load(test), load(few)
    print(f"| {label} | {updates(train)} | {' / '.join(one_decode(train))} "
          f"| {pct(t['solve_rate'])} / {pct(f['solve_rate'])} "
          f"| {pct(t['candidates_offered']['any_candidate_solves'])} / "
          f"{pct(f['candidates_offered']['any_candidate_solves'])} |")

# Session 21: MDM trained on to the VMD's total training time (seconds after `mdm.pt`, which both
# were warm-started from), and seed 1's MDM given the same extra time as seed 1's paths fine-tune.
VMD0 = HARD + "warm/train_warm-exact16-film-steps5-top-prob-margin.json"
MDM0 = HARD + "warm/train_warm-mdm-steps5-top-prob-margin.json"
MDM_CHUNKS = [MDM0] + [HERE + f"train_{n}-mdm-steps-b64.json" for n in ("ft", "ft2", "ft3")]
MDM16 = "candidates16-t1-pseudo-likelihood_{}-mdm-steps-b64_nfe5.json"
BUDGET = [  # label, training JSONs in order, test checked, 17-29 checked
    ("VMD K = 16 as trained", [VMD0], ROWS[0][2], ROWS[0][3]),
    ("VMD + 3,300 s of `steps`", [VMD0, ROWS[1][1]], ROWS[1][2], ROWS[1][3]),
    ("VMD + 3,300 s of `paths`", [VMD0, ROWS[2][1]], ROWS[2][2], ROWS[2][3]),
    ("MDM as trained", MDM_CHUNKS[:1],
     HARD + "select/coverage/test_candidates16-t1-pseudo-likelihood_warm-mdm_nfe5.json",
     HARD + "select/coverage/candidates16-pseudo-likelihood_warm-mdm_nfe5.json"),
    ("MDM + 3,300 s", MDM_CHUNKS[:2], HERE + "test_" + MDM16.format("ft"),
     HERE + "few_" + MDM16.format("ft")),
    ("MDM + 3,300 + 3,050 s", MDM_CHUNKS[:3], HERE + "test_" + MDM16.format("ft2"), None),
    ("MDM + 3,300 + 2 x 3,050 s (the VMD's total)", MDM_CHUNKS, HERE + "test_" + MDM16.format("ft3"),
     HERE + "few_" + MDM16.format("ft3")),
]
budget_table("seed 0", "test / 17-29", BUDGET)

# Seed 1, completed in session 22: its steps control, its MDM at the VMD's total time, 17-29 decodes.
MDM1 = HARD + "warm/train_warm-mdm-steps5-seed1-top-prob-margin.json"
MDM1_CHUNKS = [MDM1] + [HERE + f"train_{n}-mdm-steps-b64-seed1.json" for n in ("ft", "ft2", "ft3")]
MDM16_SEED1 = "candidates16-t1-pseudo-likelihood_{}-mdm-steps-b64-seed1_nfe5.json"
ENUM_SEED1 = "enumerate-pseudo-likelihood_ft-exact16-{}-seed1_nfe5.json"
SEED1_BUDGET = [
    ("VMD K = 16 as trained", [SEED1[0][1]], SEED1[0][2],
     HARD + "select/enumerate-pseudo-likelihood_warm-exact16-seed1_nfe5.json"),
    ("VMD + 3,300 s of `steps`", [SEED1[0][1], HERE + "train_ft-exact16-steps-b64-seed1.json"],
     HERE + "test_" + ENUM_SEED1.format("steps-b64"), HERE + "few_" + ENUM_SEED1.format("steps-b64")),
    ("VMD + 3,300 s of `paths`", [SEED1[0][1], SEED1[1][1]], SEED1[1][2],
     HERE + "few_" + ENUM_SEED1.format("paths-b16")),
    ("MDM as trained", MDM1_CHUNKS[:1],
     HARD + "select/coverage/test_candidates16-t1-pseudo-likelihood_warm-mdm-seed1_nfe5.json",
     HARD + "select/candidates16-pseudo-likelihood_warm-mdm-seed1_nfe5.json"),
    ("MDM + 3,300 s", MDM1_CHUNKS[:2], HERE + "test_" + MDM16_SEED1.format("ft"),
     HERE + "few_" + MDM16_SEED1.format("ft")),
    ("MDM + 3,300 + 2 x 3,100 s (the VMD's total)", MDM1_CHUNKS,
     HERE + "test_" + MDM16_SEED1.format("ft3"), HERE + "few_" + MDM16_SEED1.format("ft3")),
]
budget_table("seed 1", "test / 17-29", SEED1_BUDGET)

print()
print("| test split, by NFE: solved / denoiser passes per puzzle | 5 | 10 | 20 | 50 |")
print("|---|---|---|---|---|")
vmd = [HERE + f"test_enumerate-pseudo-likelihood_ft-exact16-paths-b16_nfe{n}.json"
       for n in (5, 10, 20, 50)]
print("| VMD + `paths`, every z checked | " + " | ".join(map(solved_passes, vmd)) + " |")
mdm = [HERE + f"test_argmax_ft3-mdm-steps-b64_nfe{n}.json" for n in (10, 20, 50)]
print(f"| MDM at the VMD's total time, one argmax decode | {one_decode(MDM_CHUNKS[-1])[0]} / 5 | "
      + " | ".join(map(solved_passes, mdm)) + " |")
before = {r["nfe"]: r for r in load(MDM0)["runs"] if r["split"] == "test"}
print("| MDM as trained, one argmax decode (its training run's own decodes) | " + " | ".join(
    f"{pct(before[n]['solve_rate'])} / {n}" for n in (5, 10, 20, 50)) + " |")

# Session 21, last: both seed-0 models trained on for another 2,100 s side by side (`more.sh`).
VMD_MORE = "enumerate-pseudo-likelihood_ft2-exact16-paths-b16_nfe5.json"
budget_table("seed 0, 2,100 s more each", "test / 17-29", [
    ("VMD + 3,300 + 2,100 s of `paths`",
     [VMD0, ROWS[2][1], HERE + "train_ft2-exact16-paths-b16.json"],
     HERE + "test_" + VMD_MORE, HERE + "few_" + VMD_MORE),
    ("MDM + 3,300 + 2 x 3,050 + 2,100 s", MDM_CHUNKS + [HERE + "train_ft4-mdm-steps-b64.json"],
     HERE + "test_" + MDM16.format("ft4"), HERE + "few_" + MDM16.format("ft4"))])

# Session 22: the same decodes paired puzzle by puzzle (sudoku.py compare's statistics). Seed 0's
# files were solved again in paired/ (paired.sh, paired_steps.sh: solve --json now keeps each
# puzzle's outcome); seed 1's come from seed1_*.sh and paired/.
PAIRED = HERE + "paired/"


def outcomes(path, key="solved"):
    return [c == "1" for c in load(path)["per_puzzle"][key]]


def paired_row(label, first, second):
    r = paired_difference(outcomes(first), outcomes(second))
    uncovered = [not v for v in outcomes(first, "valid_offered")]
    rescued = sum(u and m for u, m in zip(uncovered, outcomes(second)))
    print(f"| {label} | {pct(r['rate_a'])} / {pct(r['rate_b'])} | {100 * r['difference']:+.1f} | "
          f"{100 * r['paired_standard_error']:.2f} / {100 * r['unpaired_standard_error']:.2f} | "
          f"{r['a_only']} / {r['b_only']} | {r['mcnemar_p']:.1g} | {sum(uncovered)} / {rescued} |")


print()
print("| first against second (160 passes each) | solved | difference (points) | standard error: "
      "paired / as if independent | solved by one only: first / second | McNemar p | "
      "no valid grid among the first's: puzzles / solved by the second |")
print("|---|---|---|---|---|---|---|")
ENUM = "enumerate-pseudo-likelihood_{}_nfe5.json"
for split, name in (("test", "test"), ("few", "17-29")):
    paired_row(f"seed 0, {name}: VMD `paths` against MDM, 10,200 s each",
               PAIRED + f"{split}_" + ENUM.format("ft-exact16-paths-b16"),
               PAIRED + f"{split}_" + MDM16.format("ft3"))
    paired_row(f"seed 0, {name}: VMD `paths` against MDM, 12,306 s each",
               PAIRED + f"{split}_" + ENUM.format("ft2-exact16-paths-b16"),
               PAIRED + f"{split}_" + MDM16.format("ft4"))
    paired_row(f"seed 0, {name}: VMD `paths` against the `steps` control",
               PAIRED + f"{split}_" + ENUM.format("ft-exact16-paths-b16"),
               PAIRED + f"{split}_" + ENUM.format("ft-exact16-steps-b64"))
SEED1_PATHS = {"test": PAIRED + "test_" + ENUM_SEED1.format("paths-b16"),
               "few": HERE + "few_" + ENUM_SEED1.format("paths-b16")}
for split, name in (("test", "test"), ("few", "17-29")):
    paired_row(f"seed 1, {name}: VMD `paths` against MDM, 10,570 s each", SEED1_PATHS[split],
               HERE + f"{split}_" + MDM16_SEED1.format("ft3"))
    paired_row(f"seed 1, {name}: VMD `paths` against the `steps` control", SEED1_PATHS[split],
               HERE + f"{split}_" + ENUM_SEED1.format("steps-b64"))

print()
print("Solved again for pairing, against the committed decodes (same command, same seed):")
for old in [ROWS[2][2], ROWS[2][3], ROWS[1][2], ROWS[1][3], HERE + "test_" + VMD_MORE,
            HERE + "few_" + VMD_MORE, HERE + "test_" + MDM16.format("ft3"),
            HERE + "few_" + MDM16.format("ft3"), HERE + "test_" + MDM16.format("ft4"),
            HERE + "few_" + MDM16.format("ft4"), SEED1[1][2]]:
    new = PAIRED + old.rsplit("/", 1)[1]
    print(f"- {new.rsplit('/', 1)[1]}: {checked(new)} (committed {checked(old)})")

# Session 22: the equal-time test-split decodes by clue count; `none valid` counts the puzzles for
# which none of the VMD's 16 values of z gives a valid grid (per_puzzle.valid_offered).
EQUAL_TIME = {"seed 0": (PAIRED + "test_" + ENUM.format("ft-exact16-paths-b16"),
                         PAIRED + "test_" + MDM16.format("ft3")),
              "seed 1": (SEED1_PATHS["test"], HERE + "test_" + MDM16_SEED1.format("ft3"))}
puzzle_clues = sudoku.clue_counts(sudoku.read_puzzles(load(EQUAL_TIME["seed 0"][0])["puzzles"])[0])


def per_puzzle(vmd, mdm):
    """Per test puzzle: (clues, VMD solved, MDM solved, no valid VMD guess)."""
    return list(zip(puzzle_clues, outcomes(vmd), outcomes(mdm),
                    [not ok for ok in outcomes(vmd, "valid_offered")]))


PUZZLES = {seed: per_puzzle(vmd, mdm) for seed, (vmd, mdm) in EQUAL_TIME.items()}


def clue_range(puzzles, low, high):
    """Of ``per_puzzle`` rows, those with ``low``-``high`` clues: how many, VMD and MDM solve
    rates, none valid."""
    rows = [p for p in puzzles if low <= p[0] <= high]
    return (len(rows), *(sum(p[k] for p in rows) / len(rows) for k in (1, 2)),
            sum(p[3] for p in rows))


print()
print("| clues | puzzles | " + " | ".join(f"{s}: VMD / MDM, lead, none valid" for s in EQUAL_TIME)
      + " |")
print("|---|---|" + "---|" * len(EQUAL_TIME))
for c in sorted(set(puzzle_clues)):
    cells = [clue_range(PUZZLES[seed], c, c) for seed in EQUAL_TIME]
    print(f"| {c} | {cells[0][0]} | " + " | ".join(
        f"{pct(v)} / {pct(m)}, {100 * (v - m):+.1f}, {none}" for _, v, m, none in cells) + " |")
for seed in EQUAL_TIME:
    print(f"- {seed}, VMD / MDM: " + "; ".join(
        f"{low}-{high} clues ({n} puzzles): {pct(v)} / {pct(m)}, {100 * (v - m):+.1f}"
        for low, high in ((30, 34), (35, 40))
        for n, v, m, _ in [clue_range(PUZZLES[seed], low, high)]))

# Session 23: the equal-time MDMs again, each different sampled grid checked once (--check-distinct,
# distinct.sh and distinct_more.sh), so that the passes their 16 grids spent re-checking copies buy
# more grids; paired against the same VMD decodes as above. N grids cost 5 N decode passes plus 5
# per different grid; the rows at most 160 passes are the equal-passes controls.
DISTINCT = HERE + "distinct/{split}_candidates{n}-t1-pseudo-likelihood-distinct_{ck}_nfe5.json"
MDM_CK = {"seed 0": "ft3-mdm-steps-b64", "seed 1": "ft3-mdm-steps-b64-seed1"}
VMD_AT_EQUAL_TIME = {**{(seed, "test"): vmd for seed, (vmd, _) in EQUAL_TIME.items()},
                     ("seed 0", "few"): PAIRED + "few_" + ENUM.format("ft-exact16-paths-b16"),
                     ("seed 1", "few"): SEED1_PATHS["few"]}
MDM_EVERY_COPY = {"seed 0": MDM16, "seed 1": MDM16_SEED1}


def grids(path):
    offered = load(path)["candidates_offered"]
    return f"{offered['distinct_candidates']:.1f}, {pct(offered['any_candidate_solves'])}"


print()
print("| MDM at the VMD's total time, test / 17-29 | sampled grids | how checked | solved / denoiser "
      "passes per puzzle | different grids, one valid | VMD lead (points) ± paired s.e., McNemar p |")
print("|---|---|---|---|---|---|")
for seed, ck in MDM_CK.items():
    for split, name, sizes in (("test", "test", (24, 25, 28, 40, 64)), ("few", "17-29", (17,))):
        every_copy = (PAIRED if seed == "seed 0" else HERE) + f"{split}_" + \
            MDM_EVERY_COPY[seed].format("ft3")
        files = [(16, "every copy", every_copy)] + [
            (n, "each different grid once", DISTINCT.format(split=split, n=n, ck=ck))
            for n in sizes]
        for n, how, path in files:
            r = paired_difference(outcomes(VMD_AT_EQUAL_TIME[seed, split]), outcomes(path))
            print(f"| {seed}, {name} | {n} | {how} | {solved_passes(path)} | {grids(path)} | "
                  f"{100 * r['difference']:+.1f} ± {100 * r['paired_standard_error']:.2f}, "
                  f"{r['mcnemar_p']:.1g} |")
MDM25 = {seed: DISTINCT.format(split="test", n=25, ck=ck) for seed, ck in MDM_CK.items()}
for seed, mdm in MDM25.items():
    puzzles = per_puzzle(VMD_AT_EQUAL_TIME[seed, "test"], mdm)
    print(f"- {seed}, VMD / MDM with 25 grids, each different one checked once: " + "; ".join(
        f"{low}-{high} clues: {pct(v)} / {pct(m)}, {100 * (v - m):+.1f}"
        for low, high in ((30, 34), (35, 40)) for _, v, m, _ in [clue_range(puzzles, low, high)]))
for seed, mdm in MDM25.items():
    vmd = VMD_AT_EQUAL_TIME[seed, "test"]
    covered = load(vmd)["candidates_offered"]["any_candidate_solves"]
    print(f"- {seed}: a valid grid among the VMD's 16 for {pct(covered)} of test puzzles; a perfect "
          f"check of them would lead the 25-grid MDM ({pct(load(mdm)['solve_rate'])}) by "
          f"{100 * (covered - load(mdm)['solve_rate']):+.1f}")

# Session 24: below 160 passes (budget.sh). The VMD decodes only the M values of z most probable
# under its prior (--z-values M, each checked: 10 M passes) or one decode at the prior's mode
# (--z-strategy mode, 5 passes); the equal-time MDM decodes once by argmax or samples N grids, each
# different one checked once. Test split and 17-29 clues (SPLIT=few), both seeds. The last row
# of each is the equal-passes file of the tables above (every z; 25 or 17 grids).
BUDGET = HERE + "budget/"
BUDGET_VMD = {"seed 0": "ft-exact16-paths-b16", "seed 1": "ft-exact16-paths-b16-seed1"}
SPLIT_NAME = {"test": "test", "few": "17-29"}
MDM_AT_160 = {(seed, "test"): MDM25[seed] for seed in MDM_CK} | {
    (seed, "few"): DISTINCT.format(split="few", n=17, ck=ck) for seed, ck in MDM_CK.items()}


def vmd_budget_files(name, split, every_z=None):
    return ([("one decode at the prior's mode", BUDGET + f"{split}_mode_{name}_nfe5.json")]
            + [(f"its {m} most probable z, checked",
                BUDGET + f"{split}_enumerate{m}-pseudo-likelihood_{name}_nfe5.json")
               for m in (1, 2, 4, 8)]
            + ([("every z, checked", every_z)] if every_z else []))


def mdm_grids(seed, split, n):
    """budget/'s decode of the equal-time MDM with n sampled grids, each different one checked."""
    return BUDGET + f"{split}_candidates{n}-t1-pseudo-likelihood-distinct_{MDM_CK[seed]}_nfe5.json"


def mdm_budget_files(seed, split):
    last = MDM_AT_160[seed, split]
    return ([("one argmax decode", BUDGET + f"{split}_argmax_{MDM_CK[seed]}_nfe5.json")]
            + [(f"{n} sampled grids, each different one checked", mdm_grids(seed, split, n))
               for n in ((2, 4, 5, 6, 8, 12) if split == "test" else (2, 4, 8, 12))]
            + [(f"{load(last)['candidates']} sampled grids, each different one checked", last)])


print()
print("| NFE 5, split | decoder | solved / denoiser passes per puzzle | different grids, one "
      "valid |")
print("|---|---|---|---|")
for seed, split in MDM_AT_160:
    rows = [("VMD", vmd_budget_files(BUDGET_VMD[seed], split, VMD_AT_EQUAL_TIME[seed, split])),
            ("MDM", mdm_budget_files(seed, split))]
    for model, files in rows:
        for label, path in files:
            offered = "-" if "candidates_offered" not in load(path) else grids(path)
            print(f"| {seed}, {SPLIT_NAME[split]}, {model} | {label} | {solved_passes(path)} | {offered} |")



print()
print("| NFE 5, the VMD against the best MDM decode that spends no more passes | VMD / MDM "
      "solved | passes | VMD lead (points) ± paired s.e., McNemar p |")
print("|---|---|---|---|")
for seed, split in MDM_AT_160:
    vmd = dict(vmd_budget_files(BUDGET_VMD[seed], split))
    mdm = mdm_budget_files(seed, split)
    for v in ("one decode at the prior's mode", "its 4 most probable z, checked",
              "its 8 most probable z, checked"):
        m, path = max((f for f in mdm if round(passes(f[1])) <= passes(vmd[v])),
                      key=lambda f: load(f[1])["solve_rate"])
        r = paired_difference(outcomes(vmd[v]), outcomes(path))
        print(f"| {seed}, {SPLIT_NAME[split]}: VMD {v}; MDM {m} | "
              f"{pct(r['rate_a'])} / {pct(r['rate_b'])} | {passes(vmd[v]):.0f} / "
              f"{passes(path):.0f} | {100 * r['difference']:+.1f} ± "
              f"{100 * r['paired_standard_error']:.2f}, {r['mcnemar_p']:.1g} |")

# Session 24, PRIOR=1: the seed-0 VMD given a prior that reads the puzzle, p(z | x) from the
# denoiser's z-free features (discrete-features), only its head trained on `paths` for 3,000 s
# (prior_train.sh), decoded as above (prior_after.sh). Beside it, the same VMD with its own prior.
PRIOR_VMD = "prior-exact16-paths-b16"
print()
print("| NFE 5, seed 0 | passes | its own prior p(z): test / 17-29 | p(z \\| puzzle) read from the "
      "denoiser's features: test / 17-29 |")
print("|---|---|---|---|")
for (label, own_test), (_, own_few), (_, new_test), (_, new_few) in zip(
        vmd_budget_files(BUDGET_VMD["seed 0"], "test"), vmd_budget_files(BUDGET_VMD["seed 0"], "few"),
        vmd_budget_files(PRIOR_VMD, "test"), vmd_budget_files(PRIOR_VMD, "few")):
    print(f"| {label} | {passes(new_test):.0f} | {checked(own_test)} / {checked(own_few)} | "
          f"{checked(new_test)} / {checked(new_few)} |")
own_test, own_few = training_rows(HERE + "train_ft-exact16-paths-b16.json")
new_test, new_few = training_rows(BUDGET + f"train_{PRIOR_VMD}.json")
print(f"| one z drawn from the prior (each run's own evaluation) | 5 | {pct(own_test['solve_rate'])} / "
      f"{pct(own_few['solve_rate'])} | {pct(new_test['solve_rate'])} / {pct(new_few['solve_rate'])} |")
for name, path in (("its own prior", HERE + "latent_ft-exact16-paths-b16.json"),
                   ("p(z | puzzle)", BUDGET + f"latent_{PRIOR_VMD}.json")):
    at_one = [r for r in load(path)["per_mask_rate"] if r["mask_rate"] == 1][0]
    print(f"- {name}, every blank masked (test split): KL(q || p) {at_one['kl_total']:.3f} nats, "
          f"I(z; x) {at_one['mutual_information']:.3f} nats")
assert {r["bound_generator"] for r in (own_test, new_test)} == {
    "T=5, order=random, fill=sample, z=resample"}
print(f"- B_5 of the sampler with 5 calls, random order, sampled tokens, z redrawn every call "
      f"(summed out exactly), on 100 test puzzles, bits per blank: its own prior "
      f"{own_test['nll_bound_bits']:.4f}, p(z | puzzle) {new_test['nll_bound_bits']:.4f}")

# Session 25: the VMD's equal grids share one check (--check-distinct since aeb1053, distinct_vmd.sh):
# a grid that several values of z decode is checked once, under the most probable of them. Each
# decode is paired with the best MDM decode of no more passes among those above and
# distinct_mdm.sh's (16 and 18 sampled grids on the test split, 16 on 17-29 clues).
SHARED = BUDGET + "{split}_enumerate{m}-pseudo-likelihood-distinct_{name}_nfe5.json"
MORE_MDM = {"test": (16, 18), "few": (16,)}
EVERY_Z_SHARED = {seed: SHARED.format(split="test", m=16, name=name)
                  for seed, name in BUDGET_VMD.items()}  # test split, every value of z


def every_mdm_file(seed, split):
    return mdm_budget_files(seed, split) + [
        (f"{n} sampled grids, each different one checked", mdm_grids(seed, split, n))
        for n in MORE_MDM[split]]


print()
print("| NFE 5, the VMD's M most probable z | every copy checked: solved / passes | each different "
      "grid checked once: solved / passes | best MDM of no more passes: grids, solved / passes | "
      "VMD lead (points) ± paired s.e., McNemar p |")
print("|---|---|---|---|---|")
for seed, split in MDM_AT_160:
    name = BUDGET_VMD[seed]
    every_copy = dict(vmd_budget_files(name, split, VMD_AT_EQUAL_TIME[seed, split]))
    for m in (2, 4, 8, 16):
        old = every_copy["every z, checked" if m == 16 else f"its {m} most probable z, checked"]
        new = SHARED.format(split=split, m=m, name=name)
        label, mdm = max((f for f in every_mdm_file(seed, split) if passes(f[1]) <= passes(new)),
                         key=lambda f: load(f[1])["solve_rate"])
        r = paired_difference(outcomes(new), outcomes(mdm))
        print(f"| {seed}, {SPLIT_NAME[split]}, M = {m} | {solved_passes(old)} | {solved_passes(new)} "
              f"| {label.split(',')[0]}, {solved_passes(mdm)} | {100 * r['difference']:+.1f} ± "
              f"{100 * r['paired_standard_error']:.2f}, {r['mcnemar_p']:.1g} |")
for seed, vmd in EVERY_Z_SHARED.items():
    mdm = mdm_grids(seed, "test", 18)
    r = paired_difference(outcomes(vmd), outcomes(mdm))
    print(f"- {seed}, test: every z ({passes(vmd):.1f} passes) against MDM's 18 grids "
          f"({passes(mdm):.1f} passes, just more): {pct(r['rate_a'])} / {pct(r['rate_b'])}, "
          f"{100 * r['difference']:+.1f} ± {100 * r['paired_standard_error']:.2f}")
for seed, vmd in EVERY_Z_SHARED.items():
    for n in (16, 18):
        puzzles = per_puzzle(vmd, mdm_grids(seed, "test", n))
        print(f"- {seed}, every z with equal grids checked once against MDM's {n} grids: " + "; ".join(
            f"{low}-{high} clues ({k} puzzles): {pct(v)} / {pct(m)}, {100 * (v - m):+.1f}"
            for low, high in ((30, 34), (35, 40)) for k, v, m, _ in [clue_range(puzzles, low, high)]))
for seed, vmd in EVERY_Z_SHARED.items():
    covered = load(vmd)["candidates_offered"]["any_candidate_solves"]
    mdm = {n: load(mdm_grids(seed, "test", n))["solve_rate"] for n in (16, 18)}
    print(f"- {seed}, test: a valid grid among the VMD's for {pct(covered)} of puzzles; a perfect "
          f"check of them would lead MDM's 16 / 18 grids by {100 * (covered - mdm[16]):+.1f} / "
          f"{100 * (covered - mdm[18]):+.1f}")

# Session 25: sharper sampled tokens instead of argmax (temperature25.sh, seed 0, test split, each
# different grid checked once): the VMD on every value of z, MDM with 16 and 20 grids at T = 0.5.
TEMPERATURE = HERE + "temperature/test_{what}-pseudo-likelihood-distinct_{ck}_nfe5.json"
print()
print("| NFE 5, seed 0, test | tokens | solved / passes | different grids, one valid |")
print("|---|---|---|---|")
for label, tokens, path in (
        ("VMD, every z", "argmax", EVERY_Z_SHARED["seed 0"]),
        *[("VMD, every z", f"sampled at T = {t}",
           TEMPERATURE.format(what=f"enumerate-t{t}", ck=BUDGET_VMD["seed 0"])) for t in (0.5, 0.3)],
        *[(f"MDM, {n} grids", "sampled at T = 1", mdm_grids("seed 0", "test", n)) for n in (16, 18)],
        *[(f"MDM, {n} grids", "sampled at T = 0.5",
           TEMPERATURE.format(what=f"candidates{n}-t0.5", ck=MDM_CK["seed 0"])) for n in (16, 20)]):
    print(f"| {label} | {tokens} | {solved_passes(path)} | {grids(path)} |")
