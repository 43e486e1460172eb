from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = PROJECT_ROOT / "specs"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
