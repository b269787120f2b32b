"""The rule modules; importing this package registers every rule (see `diagnostics.registry`).

Symptom rules (LD1xx) by family: `blowup` (LD101 NaN, LD102 diverging), `stall` (LD103 flat, LD104
plateau), `shape` (LD105 oscillating, LD108 spikes), `generalisation` (LD106 overfitting, LD107 eval
gap), `facts` (LD109-LD111), `instability` (LD112 spike recovery, LD211 fp16 loss-scale
collapse, LD313 Adam beta2); `config` and `config_faults` hold the other LD3xx checks, `batch_scaling`
LD314 (SGD lr against the linear scaling rule), `causes` the LD2xx cause rules.
"""

from diagnostics.rules import (
    batch_scaling,
    blowup,
    causes,
    config,
    config_faults,
    facts,
    generalisation,
    instability,
    shape,
    stall,
)

__all__ = [
    "batch_scaling",
    "blowup",
    "causes",
    "config",
    "config_faults",
    "facts",
    "generalisation",
    "instability",
    "shape",
    "stall",
]
