"""The `latentquant` command line. Bad input exits with code 2 and one line naming the problem."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .errors import Interrupted, UserError, warn

PAPER_DATASETS = ("shapes3d", "mpi3d", "falcor3d", "isaac3d")

EXIT_USAGE = 2


def _train(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .train import train

    overrides = config_mod.parse_overrides(args.overrides)
    if overrides.get("resume") is not None:
        cfg = config_mod.resume(str(overrides["resume"]), overrides)
    else:
        overrides.pop("resume", None)
        cfg = config_mod.resolve(overrides)
    metrics = train(cfg)
    print(f"run directory: {cfg.run_dir}")
    print(_headline(metrics))
    return 0


def _headline(metrics: dict) -> str:
    """The one line a training or an evaluation ends with; unlabelled data has no InfoMEC to show."""
    if "infom" not in metrics:
        return f"PSNR {metrics['psnr']:.2f}  ({metrics.get('supervised', 'no InfoMEC')})"
    return (f"InfoM {metrics['infom']:.3f}  InfoE {metrics['infoe']:.3f}  InfoC {metrics['infoc']:.3f}  "
            f"PSNR {metrics['psnr']:.2f}")


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run

    overrides = {}
    for arg in args.overrides:
        key, sep, value = arg.partition("=")
        if not sep or key != "step" or not value.isdigit():
            raise UserError(f"expected step=N, got {arg!r}")
        overrides["step"] = int(value)
    clock = StageClock(sys.stderr)
    try:
        metrics, out_dir = evaluate_run(args.run_dir, step=overrides.get("step"), dci_predictor=args.dci_predictor,
                                        factorvae_votes=args.factorvae_votes, on_warning=clock.warn,
                                        protocol=args.protocol, nmi_floor=args.nmi_floor, progress=clock)
    except BaseException:
        clock.end(failed=True)
        raise
    clock.end()
    print(f"wrote {out_dir}")
    width = max(map(len, metrics))
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value if isinstance(value, str | int) else f'{value:.4f}':>8}")
    print(f"step {metrics['step']}  {_headline(metrics)}")
    return 0


class StageClock:
    """Shows each stage of a long evaluation as it starts and its time when it ends, one line per stage:
    `latentquant eval` runs minutes of metrics, and a silent terminal reads as a hang."""

    def __init__(self, stream) -> None:
        self.stream, self.clock = stream, time.perf_counter
        self.started: float | None = None

    def __call__(self, name: str) -> None:
        self.end()
        self.stream.write(f"eval: {name} ... ")
        self.stream.flush()
        self.started = self.clock()

    def end(self, failed: bool = False) -> None:
        if self.started is not None:
            self.stream.write("failed\n" if failed else f"{self.clock() - self.started:.1f} s\n")
            self.stream.flush()
            self.started = None

    def warn(self, message: str) -> None:
        self.end()  # a warning on its own line, not inside a stage's
        warn(message)


def _report(args: argparse.Namespace) -> int:
    import warnings

    from .experiments.report import ReportWarning, write_report

    with warnings.catch_warnings(record=True) as caught:  # our own warnings as one line each; library noise dropped
        warnings.simplefilter("always")
        out = write_report(args.run_dir, out=args.out, step=args.step)
    for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, ReportWarning)):
        warn(message)
    print(out)
    return 0


def _explore(args: argparse.Namespace) -> int:
    from . import explore  # lazily: `latentquant --help` must not pay for the model stack or the web framework

    if args.num_eval is not None and args.num_eval < 2:
        raise UserError(f"--num-eval must be at least 2, got {args.num_eval}")
    if args.export is not None:
        if len(args.run_dirs) > 1:
            raise UserError(f"--export writes one run's page, got {len(args.run_dirs)} run directories")
        out = explore.export(args.run_dirs[0], args.export, step=args.step, num_eval=args.num_eval, warn=warn)
        print(f"wrote {out}")
        return 0
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    explore.serve(args.run_dirs, step=args.step, host=args.host, port=args.port, num_eval=args.num_eval,
                  on_ready=lambda line: print(line, flush=True), warn=warn)
    return 0


def _metrics(args: argparse.Namespace) -> int:
    import json
    import warnings

    from .metrics.protocols import get_protocol
    from .metrics.suite import NOT_FROM_ARRAYS, array_metrics, load_metric_arrays

    try:
        protocol = get_protocol(args.protocol or "qlae")
    except ValueError as e:
        raise UserError(str(e)) from None
    sources, latents, discrete = load_metric_arrays(args.file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if protocol.sampling == "fresh":
            warnings.warn(f"the {protocol.name} protocol draws fresh samples from the dataset; from arrays, the "
                          "given rows are split instead", UserWarning, stacklevel=1)
        try:
            scores = array_metrics(sources, latents, discrete_latents=discrete, dci_predictor=args.dci_predictor,
                                   protocol=protocol, nmi_floor=args.nmi_floor or "none")
        except ValueError as e:
            raise UserError(f"{args.file}: {e}") from e
    for message in dict.fromkeys(str(w.message) for w in caught):
        warn(message)
    predictor = args.dci_predictor or protocol.dci_predictor
    if args.json:
        clean = {key: (None if value != value else value) for key, value in scores.items()}  # NaN -> null
        print(json.dumps({"n_samples": len(sources), "n_sources": sources.shape[1], "n_latents": latents.shape[1],
                          "discrete_latents": discrete, "protocol": protocol.name, "dci_predictor": predictor,
                          "nmi_floor": args.nmi_floor or "none", "metrics": clean}, indent=2))
        return 0
    kind = {True: "discrete", False: "continuous", None: "by dtype"}[discrete]
    print(f"{args.file}: N = {len(sources)}, {sources.shape[1]} sources, {latents.shape[1]} latents ({kind})")
    width = max(map(len, scores))
    for key, value in scores.items():
        shown = f"{value:.0f}" if key == "active_latents" else f"{value:.4f}"
        print(f"  {key:<{width}}  {shown:>8}")
    print(f"  (protocol: {protocol.describe()}; DCI predictor: {predictor}; not computable from arrays: "
          f"{', '.join(NOT_FROM_ARRAYS)})")
    return 0


def _udr(args: argparse.Namespace) -> int:
    import json

    from .build import run_device
    from .evaluate import encode_images, eval_indices, load_run_model
    from .metrics.udr import udr
    from .runs import RunDir, shared_dataset_configs

    if len(args.run_dirs) < 2:
        raise UserError(f"udr ranks runs against each other: give at least 2 run directories, got {len(args.run_dirs)}")
    if args.num_eval is not None and args.num_eval < 2:
        raise UserError(f"--num-eval must be at least 2, got {args.num_eval}")
    runs = [RunDir(path) for path in args.run_dirs]
    for run in runs:
        if not run.path.is_dir():
            raise UserError(f"no run directory {run.path}")
    # The same images must go through every model: same dataset file (or look-alike) at the same size.
    configs = shared_dataset_configs([run.path for run in runs], "udr needs runs on the same dataset")

    latents, steps, indices = [], [], None
    for run, cfg in zip(runs, configs, strict=True):
        data, model, meta = load_run_model(run.path, cfg, warn=warn)
        if indices is None:  # the first run's evaluation set, encoded by every model
            indices = eval_indices(len(data), args.num_eval or cfg.data.num_eval, cfg.data.seed)
        reps, _ = encode_images(model, data.images, indices, batch_size=cfg.eval.batch_size, device=run_device(cfg))
        latents.append(reps)
        steps.append(int(meta["step"]))
    try:
        result = udr(latents, correlation=args.correlation)
    except ValueError as e:
        raise UserError(f"udr: {e}") from e
    scores = [float(v) for v in result["model_scores"]]
    width = max(len(str(run.path)) for run in runs)
    print(f"UDR ({args.correlation}) on {len(indices)} evaluation images of {configs[0].data.name}:")
    for run, step, score, active in zip(runs, steps, scores, result["active"], strict=True):
        print(f"  {str(run.path):<{width}}  step {step:<7d}  {score:.4f}  ({int(active.sum())}/{active.size} "
              "latents active)")
    if args.out is not None:
        pairwise = [[None if i == j else float(v) for j, v in enumerate(row)]
                    for i, row in enumerate(result["pairwise"])]
        report = {"dataset": configs[0].data.name, "n_images": len(indices), "correlation": args.correlation,
                  "runs": [{"run_dir": str(run.path), "step": step, "udr": score,
                            "active_latents": int(active.sum()), "latents": int(active.size)}
                           for run, step, score, active in zip(runs, steps, scores, result["active"], strict=True)],
                  "pairwise": pairwise}
        try:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2)
        except OSError as e:
            raise UserError(f"cannot write {args.out}: {e.strerror}") from e
        print(f"wrote {args.out}")
    return 0


def _data(args: argparse.Namespace) -> int:
    from .data import commands

    if args.action == "where":
        print(commands.where(args.name))
    elif args.action == "make":
        out = commands.make(args.name, args.out, subset=args.subset, image_size=args.image_size)
        print(f"wrote {out}")
    elif args.action == "export":
        out = commands.export(args.name, args.out, subset=args.subset, image_size=args.image_size)
        print(f"wrote {out}: train on it with latentquant train data=images data.path={out}")
    else:
        try:
            print(commands.check(args.path, args.name))
        except UserError as e:
            print(f"latentquant: check failed: {e}", file=sys.stderr)
            return 1
    return 0


def _encode(args: argparse.Namespace) -> int:
    from .interop import encode_to_file

    out, arrays = encode_to_file(args.run_dir, args.source, args.out, step=args.step, key=args.key,
                                 batch_size=args.batch_size, progress=not args.quiet)
    kinds = ", ".join(f"{k} {'x'.join(map(str, v.shape))}" for k, v in arrays.items() if v.ndim)
    print(f"wrote {out}: {kinds} (checkpoint step {int(arrays['step'])})")
    return 0


def _table(args: argparse.Namespace) -> int:
    from .experiments import tables

    collection = tables.collect_runs(args.paths, group_by=args.group_by, step=args.step)
    metrics = args.metrics
    if args.time:
        metrics = [*(metrics or tables.METRICS), *tables.TIME_METRICS]
    text = tables.render(tables.build_tables(collection, metrics, args.confidence), args.format)
    for note in collection.notes:  # after the last possible UserError, which must stay a single line
        print(f"latentquant: {note}", file=sys.stderr)
    if args.out is None:
        print(text, end="")
        return 0
    try:
        with open(args.out, "w") as f:
            f.write(text)
    except OSError as e:
        raise UserError(f"cannot write {args.out}: {e.strerror}") from e
    print(f"wrote {args.out}")
    return 0


def _comma_list(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _sweep(args: argparse.Namespace) -> int:
    from datetime import datetime
    from pathlib import Path

    from .experiments import sweep

    if args.resume and not args.out:
        raise UserError("--resume needs --out DIR: the sweep directory to continue")
    out = Path(args.out or f"runs/sweep-{datetime.now():%Y%m%d-%H%M%S}")
    trials = sweep.load_trials(out) if args.resume and not args.overrides else sweep.expand(args.overrides)
    if args.dry_run:
        _print_trials(out, trials)
        return 0
    try:
        results = sweep.run_sweep(out, trials, workers=args.workers, threads=args.threads, backend=args.backend,
                                  address=args.address, resume=args.resume)
    except KeyboardInterrupt as e:
        print(f"latentquant: interrupted; continue with: latentquant sweep --resume --out {out}", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    return sweep.exit_code(results)


def _print_trials(out, trials) -> None:
    width = max(len(t.name) for t in trials)
    print(f"{len(trials)} trial{'s' * (len(trials) > 1)} in {out}:")
    for trial in trials:
        print(f"  {trial.name:<{width}}  {' '.join(trial.overrides)}")


def _reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .experiments import reproduce

    paths = {name: getattr(args, name) for name in PAPER_DATASETS if getattr(args, name) is not None}
    models = tuple(args.models) if args.models else reproduce.PAPER_MODELS
    trials = reproduce.plan(paths, seeds=args.seeds, models=models, extra=tuple(args.overrides))
    out = Path(args.out)
    if args.dry_run:
        _print_trials(out, trials)
        return 0
    try:
        states = reproduce.reproduce(out, trials, workers=args.workers, threads=args.threads, backend=args.backend,
                                     address=args.address)
    except KeyboardInterrupt as e:
        print(f"latentquant: interrupted; run the same command again to continue ({out})", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    from .experiments.sweep import exit_code

    return exit_code(states)


def _add_pool_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=1, help="trials running at once (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per trial (default: CPU cores // workers)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local",
                        help="local: subprocesses on this machine; ray: Ray tasks (pip install 'latentquant[ray]')")
    parser.add_argument("--address", default=None, help="Ray cluster to join (auto, ray://host:10001); "
                        "default: a local Ray instance")


def _add_protocol_options(parser: argparse.ArgumentParser, default: str) -> None:
    # Checked where they are used: listing the choices here would import the metrics on every `--help`.
    parser.add_argument("--protocol", default=None,
                        help=f"whose evaluation conventions: qlae, tripod, factorqvae or dlib (default: {default}; "
                        "docs/metrics.md has the table)")
    parser.add_argument("--dci-predictor", default=None,
                        help="override the protocol's DCI learner: gbt (disentanglement_lib's gradient boosting), "
                        "forest (Tripod's random forest), hist (histogram gradient boosting, gbt's fast stand-in)")
    parser.add_argument("--nmi-floor", default=None,
                        help="none (default) or permutation: InfoMEC's significance floor for lines of noise")


def _keys_help() -> str:
    from .config import keys_help  # dataclasses and YAML only: no torch on `--help`

    return keys_help()


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
        epilog=_keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("overrides", nargs="*", metavar="key=value")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="evaluate a run's latest (or a given) checkpoint: metrics and figures",
                        description="Evaluate a checkpoint of a run; writes <run dir>/eval/step_<N>/.")
    ev.add_argument("run_dir")
    ev.add_argument("overrides", nargs="*", metavar="step=N")
    _add_protocol_options(ev, "the run's eval.protocol (default qlae)")
    ev.add_argument("--factorvae-votes", type=int, default=10_000,
                    help="training votes of the FactorVAE score (evaluation uses half; 0 skips it)")
    ev.set_defaults(func=_eval)
    report = sub.add_parser("report", help="write a self-contained HTML page of a run: curves, figures, codebook usage",
                            description="Write one HTML file (images embedded, no scripts or links) with the "
                            "config, every logged metric, the NMI heatmap, traversals, reconstructions and the "
                            "codebook usage of a checkpoint.")
    report.add_argument("run_dir")
    report.add_argument("--out", default=None, help="where to write it (default: <run dir>/report.html)")
    report.add_argument("--step", type=int, default=None, help="the checkpoint to show (default: the latest)")
    report.set_defaults(func=_report)
    ex = sub.add_parser(
        "explore", help="see what each latent does: sliders and the decoded image in the browser (or --export)",
        description="Serve a local page with one slider per latent of a run's checkpoint and the decoded image, "
        "each latent labelled with its most informative factor; two runs on one dataset are shown side by side. "
        "--export writes one self-contained HTML file with every traversal instead (docs/explore.md).",
    )
    ex.add_argument("run_dirs", nargs="+", metavar="run_dir", help="one run directory, or two to compare")
    ex.add_argument("--step", type=int, default=None, help="the checkpoint to load (default: the latest intact)")
    ex.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    ex.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ex.add_argument("--num-eval", type=int, default=None,
                    help="evaluation images for the NMI labels, ranges and usage (default: the run's data.num_eval)")
    ex.add_argument("--export", metavar="PAGE.html", default=None,
                    help="write a static page with precomputed traversals instead of serving")
    ex.set_defaults(func=_explore)
    sw = sub.add_parser(
        "sweep",
        help="run a grid of trainings: model=qlae,ae seed=1,2,3 (one run directory per trial)",
        description="Expand comma lists of key=value overrides into a grid and train every combination, each "
        "in <out>/<trial name>. Exits 1 if a trial failed; --resume skips finished trials and resumes killed ones.",
    )
    sw.add_argument("overrides", nargs="*", metavar="key=v1,v2,...")
    sw.add_argument("--out", default=None, help="sweep directory (default: runs/sweep-<date>-<time>)")
    _add_pool_options(sw)
    sw.add_argument("--resume", action="store_true",
                    help="continue the sweep in --out (no overrides: its saved trials)")
    sw.add_argument("--dry-run", action="store_true", help="print the trials and their overrides; run nothing")
    sw.set_defaults(func=_sweep)
    rep = sub.add_parser(
        "reproduce",
        help="the paper's grid (every model x dataset x 7 seeds, preset=paper) for the data you have; "
        "without data, the look-alike grid at the CPU preset",
        description="Train the paper's models on each dataset given (--shapes3d PATH ...) at preset=paper, 7 seeds, "
        "or, with no dataset, on the Shapes3D look-alike at the CPU preset, 2 seeds; then write "
        "tables.{md,tex,csv} in --out. Running it again continues where it stopped.",
    )
    for name in PAPER_DATASETS:
        rep.add_argument(f"--{name}", metavar="PATH", default=None, help=f"the {name} file or folder")
    rep.add_argument("--out", default="runs/reproduce", help="sweep directory (default: runs/reproduce)")
    rep.add_argument("--seeds", type=int, default=None, help="seeds per model and dataset (default: 7, or 2 "
                     "for the look-alike grid)")
    rep.add_argument("--models", type=_comma_list, default=None, help="a comma list (default: the paper's 12)")
    _add_pool_options(rep)
    rep.add_argument("--dry-run", action="store_true", help="print the trials; run nothing")
    rep.add_argument("overrides", nargs="*", metavar="key=value", help="added to every trial, e.g. train.device=cuda")
    rep.set_defaults(func=_reproduce)
    metrics = sub.add_parser(
        "metrics",
        help="score arrays from any project: InfoMEC, DCI, MIG, SAP, DCI-ES",
        description="Compute every array metric for an .npz holding 'sources' (N, K), 'latents' (N, D) and "
        "optionally 'discrete_latents' (a boolean; default: integer latents are discrete).",
    )
    metrics.add_argument("file", help=".npz file")
    metrics.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_protocol_options(metrics, "qlae")
    metrics.set_defaults(func=_metrics)
    udr = sub.add_parser(
        "udr",
        help="rank runs without labels: UDR (Duan et al. 2020) of runs on the same dataset",
        description="Encode the first run's evaluation images with the latest checkpoint of every run and print "
        "each run's UDR score: the median over the other runs of how one-to-one its latents match theirs.",
    )
    udr.add_argument("run_dirs", nargs="+", metavar="run_dir", help="two or more run directories")
    udr.add_argument("--correlation", choices=["spearman", "lasso"], default="spearman",
                     help="spearman: the paper's UDR (default); lasso: UDR_L")
    udr.add_argument("--num-eval", type=int, default=None,
                     help="images to encode (default: the first run's data.num_eval)")
    udr.add_argument("--out", default=None, help="also write the scores and the pairwise matrix as JSON")
    udr.set_defaults(func=_udr)
    data = sub.add_parser("data", help="make look-alike files, check real files, say where to get them")
    actions = data.add_subparsers(dest="action", required=True)
    make = actions.add_parser("make", help="write a procedural look-alike in the official format")
    make.add_argument("name")
    make.add_argument("--out", required=True)
    make.add_argument("--subset", type=int, default=None, help="only N images of the grid (seeded)")
    make.add_argument("--image-size", type=int, default=None,
                      help="Shapes3D and MPI3D: the size written (default 64); the others have one official size")
    export = actions.add_parser("export", help="write a look-alike as a folder of PNGs + factors.csv (the "
                                "data=images layout, docs/your-data.md)")
    export.add_argument("name")
    export.add_argument("--out", required=True)
    export.add_argument("--subset", type=int, default=None, help="only N images of the grid (seeded)")
    export.add_argument("--image-size", type=int, default=None, help="Shapes3D and MPI3D: the size written")
    check = actions.add_parser("check", help="verify a dataset file or folder (exit 1 with the reason if bad)")
    check.add_argument("path")
    check.add_argument("--name", default=None, help="the dataset, if not detected from the file")
    where = actions.add_parser("where", help="official source, file name, size and checksum")
    where.add_argument("name")
    data.set_defaults(func=_data)
    enc = sub.add_parser("encode", help="write the latents of images (a folder, an array file, a dataset) as .npz",
                         description="Encode images with a run's checkpoint and write representation (what the "
                         "metrics score), z_hat (the decoder's input) and codes (integer codebook indices, for "
                         "latents that have them) to an .npz, with the folder's file names and any labels. SOURCE: "
                         "a folder of images, an .npz/.h5/.npy file, or a dataset name (the run's own: its data).")
    enc.add_argument("run_dir")
    enc.add_argument("source")
    enc.add_argument("--out", required=True, help="the .npz to write (atomically)")
    enc.add_argument("--step", type=int, default=None, help="the checkpoint (default: the latest intact one)")
    enc.add_argument("--key", default=None, help="the images' array in an .npz/.h5 (default: its only array)")
    enc.add_argument("--batch-size", type=int, default=None, help="default: the run's eval.batch_size")
    enc.add_argument("--quiet", action="store_true", help="no progress bar while decoding a folder")
    enc.set_defaults(func=_encode)
    table = sub.add_parser("table", help="mean ± 95%% CI per model × dataset from finished runs (Markdown, LaTeX, CSV)",
                           description="Tabulate finished runs (run directories, or directories holding them) as "
                           "the paper does: per model × dataset the mean ± a Student-t confidence interval over "
                           "seeds, bold where an interval reaches the best one; with several datasets also an "
                           "aggregate table. Unfinished runs are skipped.")
    table.add_argument("paths", nargs="+", metavar="path", help="run directory or a directory holding runs")
    table.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")
    table.add_argument("--out", default=None, help="write to this file instead of printing")
    table.add_argument("--metrics", type=_comma_list, action="extend", default=None,
                       help="columns, comma-separated (default: InfoM,InfoE,InfoC,D,C,I,PSNR)")
    table.add_argument("--group-by", type=_comma_list, action="extend", default=[], metavar="KEY",
                       help="config keys that also separate rows, e.g. model.weight_decay (repeatable)")
    table.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    table.add_argument("--step", type=int, default=None, metavar="N",
                       help="score each run at its evaluation at step N instead of its last (runs without one "
                            "are skipped)")
    table.add_argument("--time", action="store_true",
                       help="add each run's wall time (min) and ms per training step (means over seeds)")
    table.set_defaults(func=_table)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Interrupted as e:
        print(f"latentquant: {e}", file=sys.stderr)
        return e.code
    except UserError as e:
        print(f"latentquant: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = "; resume with resume=<run dir>" if args.command == "train" else ""
        print(f"latentquant: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `latentquant ... | head`: the reader left, which is not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as e:  # a disk that filled up or went read-only mid-run: the machine's problem, one line
        where = f": {e.filename}" if e.filename else ""
        print(f"latentquant: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
