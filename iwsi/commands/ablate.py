"""`iwsi ablate`: methods × k × seeds (× datasets) over shared generations (the work: iwsi/ablate.py)."""
from __future__ import annotations

import argparse

from iwsi.commands import DATA_ROOT, add_config_options, add_debug, default_config

HELP = "sweep methods × k × seeds over shared generations"
CHECK_EDGE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, "ablation directory (default: cache/ablations/<datasets>-<config hash>)")
    add_debug(parser)
    parser.add_argument("--methods", default="lmsi,iwsi", help="comma-separated methods")
    parser.add_argument("--k", default="80", help="comma-separated k values")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--datasets", default=None, help="comma-separated datasets (default: the config's)")
    parser.add_argument("--data-root", default=DATA_ROOT,
                        help="folder holding <dataset>/ for datasets other than the config's")
    parser.add_argument("--shared-from", metavar="ABLATION_DIR",
                        help="reuse another ablation's generations (its shared/ stages, hard-linked), e.g. to sweep "
                             "training settings; they must match this config's generation settings")


def main(args: argparse.Namespace) -> int:
    from iwsi.ablate import main

    args.data_root = args.data_root or DATA_ROOT
    return main(args, default_config())
