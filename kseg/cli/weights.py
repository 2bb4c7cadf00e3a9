"""``kseg weights list`` and ``kseg weights download NAME [--cache-dir DIR]``."""

from __future__ import annotations

import os


def add_arguments(parser):
    """Add the ``list`` / ``download`` sub-commands to `parser` (an argparse parser)."""
    actions = parser.add_subparsers(dest="weights_action", metavar="{list,download}")
    actions.required = True
    listing = actions.add_parser("list", help="known weight files and whether they are cached")
    listing.add_argument("--cache-dir", default=None, help="cache root (default: ~/.keras)")
    download = actions.add_parser("download", help="download and verify a weights file")
    download.add_argument("name", help="e.g. mask_rcnn_coco (see `kseg weights list`)")
    download.add_argument("--cache-dir", default=None,
                          help="cache root; the file goes to <cache-dir>/models/")
    download.add_argument("--url", default=None, help="download from this URL instead")
    download.add_argument("--force", action="store_true", help="download even when cached")
    return parser


def _size(entry):
    """``245.6 MiB`` or ``?``."""
    return "?" if entry.size is None else f"{entry.size / 2**20:.1f} MiB"


def _list(args):
    """Print the registry as a table; returns 0."""
    from kseg import weights

    rows = []
    for entry in weights.list_weights():
        path = weights.weights_path(entry.name, args.cache_dir)
        classes = "-" if entry.classes is None else str(len(entry.classes))
        cached = "yes" if os.path.exists(path) else "no"
        rows.append((entry.name, _size(entry), classes, cached, entry.description))
    header = ("name", "size", "classes", "cached", "description")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    print(f"cache: {os.path.dirname(weights.weights_path(rows[0][0], args.cache_dir))}")
    return 0


def _download(args):
    """Download one file; returns 0 on success, 1 with a message on failure."""
    from kseg import weights

    try:
        path = weights.get(args.name, cache_dir=args.cache_dir, url=args.url, force=args.force)
    except (KeyError, weights.WeightsError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        return 1
    print(path)
    return 0


def run(args):
    """Run the parsed ``kseg weights ...`` command; returns the exit code."""
    return _list(args) if args.weights_action == "list" else _download(args)
