"""The `kdp-beam` command line."""

import argparse
import json
import logging
import sys

from kdp_beam.errors import KdpBeamError


def _parser():
    from kdp_beam.io import READERS

    parser = argparse.ArgumentParser(
        prog="kdp-beam",
        description="One-pass feature statistics for Keras preprocessing, on Apache Beam.",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="a module registering custom statistics (kdp_beam.plugins); repeatable",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser(
        "analyze",
        help="analyse data once and write an artifact bundle",
        description="Every option not listed here is passed to Beam's PipelineOptions "
        "unchanged (--runner, --project, --direct_num_workers, ...). The default runner "
        "is the local FnApiRunner.",
    )
    analyze.add_argument("--features", required=True, help="features JSON (local or remote)")
    analyze.add_argument("--input", required=True, help="file pattern, e.g. 'data/part-*.csv'")
    analyze.add_argument("--output", required=True, help="bundle directory to write")
    analyze.add_argument(
        "--format", choices=sorted(READERS), help="input format (default: from the extension)"
    )
    analyze.add_argument(
        "--fanout", type=int, default=None, help="intermediate keys of the global combine"
    )
    analyze.add_argument(
        "--profile",
        action="store_true",
        help="also sketch every numeric feature's distribution, for kdp-beam report",
    )
    analyze.add_argument(
        "--on-bad-record",
        choices=["fail", "skip"],
        default="fail",
        help="fail: stop at the first record that cannot be read, naming file, row and "
        "column (default); skip: leave it out, count it per reason in the bundle and write "
        "it with its reason to OUTPUT/bad_records/",
    )
    analyze.add_argument(
        "--split-size",
        "--csv-split-size",
        dest="split_size",
        type=int,
        default=None,
        help="bytes per unit of work of a large uncompressed CSV or JSON Lines file (0: read "
        "files whole; default 64 MiB)",
    )
    infer = commands.add_parser(
        "infer",
        help="propose a features JSON from a sample of the data, with a reason per column",
    )
    infer.add_argument("--input", required=True, help="file pattern")
    infer.add_argument("--output", required=True, help="features JSON to write")
    infer.add_argument("--format", choices=["csv", "parquet", "jsonl"], help="default: extension")
    infer.add_argument("--sample-rows", type=int, default=100_000, help="rows to look at")
    report = commands.add_parser(
        "report", help="write a self-contained HTML profile of a bundle's data"
    )
    report.add_argument("bundle", help="bundle directory (local or remote)")
    report.add_argument("--output", required=True, help="HTML file to write")
    merge = commands.add_parser(
        "merge",
        help="merge bundles of disjoint data into the bundle of their union (no data read)",
    )
    merge.add_argument("bundles", nargs="+", help="bundle directories (local or remote)")
    merge.add_argument("--output", required=True, help="bundle directory to write")
    return parser


def main(argv=None):
    """Runs a command; returns the process exit code (2 for a kdp_beam error)."""
    args, pipeline_args = _parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from kdp_beam.plugins import import_plugins

    import_plugins(args.plugin)
    if args.command == "merge":
        return _merge(args)
    if args.command == "infer":
        return _infer(args)
    if args.command == "report":
        return _report(args)
    from kdp_beam.artifacts import DEAD_LETTERS, load_bundle
    from kdp_beam.job import read_spec, run_analysis
    from kdp_beam.summary import summary_table

    try:
        spec = read_spec(args.features)
        if args.profile:
            spec.profile = True
        summary = run_analysis(
            spec,
            args.input,
            args.output,
            args.format,
            pipeline_args,
            args.fanout,
            args.split_size,
            args.on_bad_record,
        )
        bundle = load_bundle(args.output)
    except KdpBeamError as e:
        print(f"kdp-beam: error: {e}", file=sys.stderr)
        return 2
    print(summary_table(bundle.features, bundle.row_count), file=sys.stderr)
    bad = bundle.bad_records
    if bad["count"]:
        print(
            f"{bad['count']:,} bad records left out {bad['by_reason']}, written to "
            f"{args.output}/{DEAD_LETTERS}/",
            file=sys.stderr,
        )
    print(json.dumps(summary, indent=2))
    return 0


def _report(args):
    from kdp_beam.report import write_report

    try:
        write_report(args.bundle, args.output)
    except KdpBeamError as e:
        print(f"kdp-beam: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _infer(args):
    from kdp_beam.infer import infer_features, write_features

    try:
        features = infer_features(args.input, args.format, args.sample_rows)
    except KdpBeamError as e:
        print(f"kdp-beam: error: {e}", file=sys.stderr)
        return 2
    write_features(features, args.output)
    width = max(len(name) for name in features["notes"])
    for name, note in features["notes"].items():
        declared = features["features"].get(name, "-")
        kind = declared if isinstance(declared, str) else declared["type"]
        print(f"{name.ljust(width)}  {kind:<20} {note}", file=sys.stderr)
    print(f"wrote {args.output}: edit it, then kdp-beam analyze --features {args.output}", file=sys.stderr)
    return 0


def _merge(args):
    from kdp_beam.artifacts import load_bundle
    from kdp_beam.merge import merge_bundles
    from kdp_beam.summary import summary_table

    try:
        merge_bundles(args.bundles, args.output)
        bundle = load_bundle(args.output)
    except KdpBeamError as e:
        print(f"kdp-beam: error: {e}", file=sys.stderr)
        return 2
    print(summary_table(bundle.features, bundle.row_count), file=sys.stderr)
    print(json.dumps({"output": args.output, "merged": args.bundles, "row_count": bundle.row_count}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
