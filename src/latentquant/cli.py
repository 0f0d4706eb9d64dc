"""The `latentquant` command line. Bad input exits with code 2 and one line naming the problem."""

from __future__ import annotations

import argparse
import sys

from .errors import UserError

EXIT_USAGE = 2


def _train(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .train import resolve_resume, train

    overrides = config_mod.parse_overrides(args.overrides)
    if "resume" in overrides and overrides["resume"] is not None:
        cfg = config_mod.Config(resume=str(overrides["resume"]))
        cfg = resolve_resume(cfg, overrides)
    else:
        cfg = config_mod.resolve(overrides)
    metrics = train(cfg)
    print(f"run directory: {cfg.run_dir}")
    print(f"InfoM {metrics['infom']:.3f}  InfoE {metrics['infoe']:.3f}  InfoC {metrics['infoc']:.3f}  "
          f"PSNR {metrics['psnr']:.2f}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .train import evaluate_run

    overrides = {}
    for arg in args.overrides:
        key, sep, value = arg.partition("=")
        if not sep or key != "step" or not value.isdigit():
            raise UserError(f"expected step=N, got {arg!r}")
        overrides["step"] = int(value)
    metrics, out_dir = evaluate_run(args.run_dir, step=overrides.get("step"))
    print(f"wrote {out_dir}")
    print(f"step {metrics['step']}  InfoM {metrics['infom']:.3f}  InfoE {metrics['infoe']:.3f}  "
          f"InfoC {metrics['infoc']:.3f}  PSNR {metrics['psnr']:.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentquant", description="Disentanglement via latent quantization: train, evaluate, measure."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train a model (default: QLAE on the Shapes3D look-alike, CPU preset)",
        description="Train a model. Arguments are key=value overrides, e.g. model=ae seed=2 train.steps=500 "
        "preset=paper data.path=~/data/3dshapes.h5; resume=<run dir> continues a killed run.",
    )
    train.add_argument("overrides", nargs="*", metavar="key=value")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="evaluate a run's latest (or a given) checkpoint: metrics and figures",
                        description="Evaluate a checkpoint of a run; writes <run dir>/eval/step_<N>/.")
    ev.add_argument("run_dir")
    ev.add_argument("overrides", nargs="*", metavar="step=N")
    ev.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"latentquant: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("latentquant: interrupted; resume with resume=<run dir>", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
