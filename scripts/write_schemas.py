"""Rewrite the checked-in JSON Schemas in ``schemas/`` from the event models."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.models import write_schemas

if __name__ == "__main__":
    for path in write_schemas():
        print(path)
