"""`iwsi probe`: what each selection signal detects on known-defect rationales (the work: iwsi/probe.py)."""
from __future__ import annotations

import argparse

from iwsi.commands import add_debug, default_config
from iwsi.probe_variants import KINDS, SEVERITIES

HELP = "DSE probe: what each selection signal detects on known-defect rationales"
CHECK_EDGE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (default: configs/demo.yaml); dataset, model, engine, loss_span")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--n", type=int, default=100, help="clean rationales to probe (after valid_size rows for D_v)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated defect kinds")
    parser.add_argument("--severity", choices=SEVERITIES, default="mild",
                        help="mild: one step repeated / the last step kept / one number changed; severe: every step "
                             "repeated / the whole reasoning removed / every number changed")
    parser.add_argument("--sweep", metavar="KEY=V1,V2",
                        help="score once per value, e.g. loss_span=full,completion or valid_size=5,20")
    parser.add_argument("--k", type=float, default=None,
                        help="k %% cut for the dropped/kept shares (default: config k)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    parser.add_argument("--self-eval", action="store_true", help="also score with the self-evaluation judge")
    parser.add_argument("--run", metavar="RUN_DIR",
                        help="instead: AUROC on a real run's labels/suggestions (no model)")
    parser.add_argument("--name", help="probe name under cache/probes (default from dataset, n, seed)")
    parser.add_argument("--out", help="probe directory (overrides --name)")
    add_debug(parser)


def main(args: argparse.Namespace) -> int:
    from iwsi.probe import main

    return main(args, default_config())
