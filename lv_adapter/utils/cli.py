"""Command-line parts the tools share: the parser of a tool that builds a model from a config,
and checks made before any model is built or file written."""
import argparse
import os

from lv_adapter.projects import add_project_argument

__all__ = ["check_opts_last", "check_writable_file", "check_writable_folder",
           "config_tool_parser", "parse_config_tool_args"]


def config_tool_parser(doc, config_help="the config the model trained with"):
    """An ArgumentParser for a tool that builds a model from a config: its description is the
    first paragraph of ``doc`` (the rest stays the module's), with ``--config-file`` (required)
    and ``--project``; the tool adds its own options, then calls
    :func:`parse_config_tool_args`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help=config_help)
    add_project_argument(parser)
    return parser


def parse_config_tool_args(parser, argv=None):
    """Parse ``argv`` with the config's ``KEY VALUE`` overrides last (``args.opts``), refusing
    an option written after them (:func:`check_opts_last`)."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    check_opts_last(parser, args.opts)
    return args


def check_opts_last(parser, opts):
    """Refuse an option after the ``KEY VALUE`` config pairs: argparse hands everything after
    the first pair to them, so ``--output x`` would be read as a config key and value."""
    options = [item for item in opts if isinstance(item, str) and item.startswith("--")]
    if options:
        parser.error(f"{options[0]} comes after the KEY VALUE config pairs; put the tool's "
                     "options before them")


def check_writable_file(path, option):
    """Refuse an output file that cannot be written, naming ``option``: a folder, or a folder
    that cannot be created or written (better now than after the model has run)."""
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder; give a file name")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), option)


def check_writable_folder(folder, option):
    """Refuse a folder that is a file, or that cannot be created or written."""
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{option} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {folder}: {existing} is not writable")
