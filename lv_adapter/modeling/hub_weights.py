"""Hub weights on machines without the model hub: fail in seconds, naming the config key.

open_clip fetches a pretrained tag (``"openai"``) from the Hugging Face hub. On a machine that
cannot reach it (most clusters' compute nodes) the hub client retries for about a minute and
ends in open_clip's traceback, which names neither the config key nor what to do. Before
open_clip is asked, :func:`check_hub_weights` looks for the file in the hub cache and, when it is
not there, whether the hub can be reached at all (``HF_HUB_OFFLINE=1`` says it cannot).
"""
import os
import socket
from urllib.parse import urlparse

__all__ = ["HubUnreachableError", "check_hub_weights"]

# open_clip's names for a repository's weights (open_clip/constants.py), safetensors first.
_HUB_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
PROBE_SECONDS = 3.0


class HubUnreachableError(RuntimeError):
    """A config key names hub weights that are neither cached nor downloadable here."""


def check_hub_weights(key, model_name, tag, pretrained_cfg):
    """Return when open_clip can load ``tag`` (cached, or the hub is reachable); else raise.

    Args:
        key (str): the config key that named the tag (for the message).
        model_name (str), tag (str): the open_clip model and pretrained tag.
        pretrained_cfg (dict): ``open_clip.get_pretrained_cfg(model_name, tag)``.
    """
    hub = pretrained_cfg.get("hf_hub", "")
    if not hub:
        return  # a plain URL (open_clip's own cache): not the hub's client, nothing to check
    # "org/repo/" names a repository (open_clip's default file names), "org/repo/file" a file
    repo, filename = os.path.split(hub)
    names = (filename,) if filename else _HUB_FILENAMES
    if _cached(repo, names):
        return
    reason = _unreachable()
    if reason is None:
        return
    raise HubUnreachableError(
        f"{key} is {tag!r}: open_clip would download {model_name}'s weights ({repo}, file "
        f"{' or '.join(names)}) from the Hugging Face hub, which {reason}, and they are not in "
        f"the hub cache ({_cache_dir()}). Either fill the cache on a machine with network "
        f"(`huggingface-cli download {repo}`, then copy {_cache_dir()}), or give a local open_clip "
        f"checkpoint file of the whole model: {key} /path/to/{model_name}.pt"
        + (f" (e.g. {pretrained_cfg['url']})" if pretrained_cfg.get("url") else ""))


def _cache_dir():
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _cached(repo, names):
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name, cache_dir=_cache_dir()), str)
               for name in names)


def _unreachable():
    """Why the hub cannot be reached (None when it can): offline mode, or no connection to its
    endpoint within :data:`PROBE_SECONDS`."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "is switched off here (HF_HUB_OFFLINE=1)"
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=PROBE_SECONDS).close()
    except OSError as e:
        return f"cannot be reached from this machine ({endpoint.hostname}:{port}: {e})"
    return None
