"""Reports and logs the nodes write: JSON, written whole or not at all."""

import json
from pathlib import Path


def write_json(path, data, indent=None) -> Path:
    """
    Write ``data`` as JSON to ``path``, creating its folder.

    The data go to a temporary file beside it that replaces ``path`` once written, so a reader
    never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(data, indent=indent))
    tmp.replace(path)
    return path
