"""The rule modules; importing this package registers every rule (see `diagnostics.registry`)."""

from diagnostics.rules import causes, config, symptoms

__all__ = ["causes", "config", "symptoms"]
