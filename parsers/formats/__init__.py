"""Format plug-ins, one module per format (see parsers/registry.py for the interface)."""
