"""Where the project lives on disk; imported before the settings exist."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("KAM_VAR_DIR", BASE_DIR / "var"))
