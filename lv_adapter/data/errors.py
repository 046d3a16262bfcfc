"""Errors for unusable data, and the policy that decides whether they stop loading.

Every problem with an input file (missing, unreadable, malformed, inconsistent) is reported as a
:class:`BadSampleError` that names the file and says what is wrong. A :class:`BadSampleHandler`
applies the policy chosen by ``DATASETS.ON_BAD_SAMPLE``: ``"raise"`` (the default) stops with that
error; ``"skip"`` drops the sample, logs a warning, and keeps a count.
"""
import contextlib
import logging

POLICIES = ("raise", "skip")

logger = logging.getLogger(__name__)
_default_policy = "raise"
_collectors = []  # lists that receive every skipped error (see collect_skipped)


class BadSampleError(ValueError):
    """A dataset file or record cannot be used.

    Args:
        path (str): the file (or ``file:record``) at fault.
        problem (str): what is wrong with it.
    """

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def check_policy(policy):
    if policy not in POLICIES:
        raise ValueError(f"DATASETS.ON_BAD_SAMPLE must be one of {POLICIES}, got {policy!r}")
    return policy


def set_default_policy(policy):
    """Set the policy used by dataset loaders that were registered without an explicit one.

    Dataset registration happens at import, before any config exists; ``train_net.py`` calls this
    with ``cfg.DATASETS.ON_BAD_SAMPLE`` before the datasets are loaded.
    """
    global _default_policy
    _default_policy = check_policy(policy)


def get_default_policy():
    return _default_policy


@contextlib.contextmanager
def collect_skipped():
    """Within this context the default policy is "skip", and every error skipped is also
    appended to the list it yields: a check can load a whole data set and report every bad
    record instead of stopping at the first."""
    global _default_policy
    saved, errors = _default_policy, []
    _default_policy = "skip"
    _collectors.append(errors)
    try:
        yield errors
    finally:
        _collectors.remove(errors)
        _default_policy = saved


class BadSampleHandler:
    """Raise or skip-and-count bad samples.

    Args:
        policy (str or None): "raise" or "skip"; None takes :func:`get_default_policy`.
        what (str): what a sample is, for the log ("image", "frame", ...).
    """

    def __init__(self, policy=None, what="sample"):
        self.policy = check_policy(policy if policy is not None else _default_policy)
        self.what = what
        self.count = 0

    def __call__(self, error):
        """Handle ``error`` (a :class:`BadSampleError`): re-raise it, or log and count it."""
        if self.policy == "raise":
            raise error
        self.count += 1
        for errors in _collectors:
            errors.append(error)
        logger.warning(f"Skipping a bad {self.what} ({self.count} skipped so far): {error}")
