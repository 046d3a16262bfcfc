"""What the projects under ``projects/`` share: their train_net.py is the repository's, with the
project's package imported first (it registers the project's heads, datasets or config keys)."""
import importlib
import os
import sys

__all__ = ["add_project_argument", "import_projects", "project_train_net"]


def project_train_net(script, package):
    """Import ``package`` (a folder beside ``script``) and return the repository's train_net.

    Args:
        script (str): the project's train_net.py (its ``__file__``), in ``projects/<Name>/``.
        package (str): the project's package name, a folder of ``projects/<Name>/``.

    Call it at module level, not under ``if __name__ == "__main__"``: spawned worker processes
    (``--num-gpus``) import the script again, and must register the project's modules too.
    """
    project = os.path.dirname(os.path.abspath(script))
    root = os.path.dirname(os.path.dirname(project))
    # The repository's root first, even where it is on the path already (PYTHONPATH) behind the
    # script's folder: "train_net" must be its train_net.py, not the project's.
    sys.path[:] = [root, project] + [p for p in sys.path if p not in (root, project)]
    importlib.import_module(package)
    return importlib.import_module("train_net")


def import_projects(folders):
    """Import the package of each project folder (``projects/<Name>``: its one subfolder with an
    ``__init__.py``), which registers the project's datasets, heads or config keys; for the
    tools' ``--project`` option. Raises ValueError naming a folder that holds no such package."""
    for folder in folders:
        folder = os.path.abspath(folder)
        packages = sorted(name for name in os.listdir(folder) if os.path.isfile(
            os.path.join(folder, name, "__init__.py"))) if os.path.isdir(folder) else []
        if len(packages) != 1:
            raise ValueError(f"--project {folder}: expected a project folder with one Python "
                             f"package (projects/<Name>/<package>/__init__.py), found {packages}")
        if folder not in sys.path:  # after the repository: "train_net" stays the root one
            sys.path.append(folder)
        importlib.import_module(packages[0])


def add_project_argument(parser):
    """Add the tools' ``--project DIR`` option (repeatable) to ``parser``; its value goes to
    :func:`import_projects`."""
    parser.add_argument("--project", action="append", default=[], metavar="DIR",
                        help="a project folder (projects/NuImages) whose package registers the "
                             "datasets or heads it needs; repeatable")
