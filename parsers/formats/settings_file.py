"""A run's settings saved on their own, uploaded beside a curves-only log: config only, no metrics.

TensorBoard event files, metrics CSVs and `trainer_state.json` hold curves but not the settings the
configuration checks read (frozen layers, loaded weights, BatchNorm mode, input normalisation, the
batch size), and the page asks for them. Users keep them in a file of their own: the printed
arguments (`Namespace(lr=0.1, freeze_backbone=True, ...)`), the command line (`python train.py --lr
0.1 --freeze-backbone`), a JSON of the arguments, a YAML config (detectron2, Hydra) or an
mmengine/mmdetection Python config. They are read by the readers the text logs already use for their
echoed settings (`parsers.hparams`; a Python config as the block under an mmdetection log's `Config:`
line), so a setting means the same whichever file states it.

The file is claimed only when no other format claims it (a fallback: `parsers.registry.detect` sniffs
it last), it is small, and the readers find at least one setting; otherwise it stays unrecognised, as
before.
"""

from __future__ import annotations

import re

from parsers.hparams import settings_document_facts
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "settings_file"
FRAMEWORK = "unknown"

FALLBACK = True  # sniffed only when no other format claims the file
SCORE = 1.0  # any score above 0: only fallbacks compete for a file no other format claims
MAX_BYTES = 1024**2  # settings files are kilobytes; a larger unrecognised file is a log we cannot read
_PYTHON_CONFIG = re.compile(r"^\w+ = dict\(", re.MULTILINE)
# A program, not its settings: a training script in a run folder states defaults and code, not the run's
# values (an mmcv config may import, but it defines its settings as `name = dict(...)`).
_PROGRAM = re.compile(r"^(?:import \w|from [\w.]+ import |def \w|class \w)", re.MULTILINE)


def sniff(source: SourceFile) -> float:
    if source.size > MAX_BYTES or source.looks_binary():
        return 0.0
    return SCORE if _states_settings(_read(source.head_text(MAX_BYTES), source.name)) else 0.0


def parse(source: SourceFile) -> ParsedFile:
    meta = _read(source.text, source.name)
    if not _states_settings(meta):
        raise ParseError("no settings recognised (learning rate, batch size, frozen layers, weights, ...)")
    return ParsedFile(metrics=None, meta=meta)


def _read(text: str, name: str) -> RunMeta:
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    python_config = _PYTHON_CONFIG.search(text) is not None
    if python_config or not _PROGRAM.search(text):
        settings_document_facts(text, name, meta, python_config=python_config)
    return meta


def _states_settings(meta: RunMeta) -> bool:
    return bool(meta.where)  # every fact the readers set, list facts included, records its line there
