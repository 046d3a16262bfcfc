"""Looking a config value up in a detectron2 ``Registry``, with an error that names the key."""

__all__ = ["lookup"]


def lookup(registry, name, key):
    """The object ``registry`` holds under ``name``, the value of config ``key``.

    Raises:
        ValueError: ``name`` is not registered; names ``key``, the value and the registered
            names (the registry's own KeyError names neither the key nor the choices).
    """
    try:
        return registry.get(name)
    except KeyError:
        known = sorted(registered for registered, _ in registry)
        raise ValueError(
            f"{key} is {name!r}, which no imported module registers; registered: {known} (a "
            "project's parts are registered by importing its package, e.g. through its "
            "train_net.py)"
        ) from None
