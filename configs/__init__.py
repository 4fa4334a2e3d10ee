"""optevo.configs: YAML presets and the library of known optimizers (programs/)."""
