#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) from requirements.lock, exactly.
# Idempotent: `make` calls it only when requirements.lock or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q "uv==${UV_VERSION}"
# uv installs the locked set exactly (removing anything else), then the project itself, editable.
.venv/bin/uv pip sync -q --python .venv/bin/python requirements.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .

# Environment defaults for every Python process of this venv (so `.venv/bin/airflow` and
# `.venv/bin/recon` work without exporting anything). Values already in the environment win.
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$SITE/zz_psp_recon_env.pth" <<PTH
import os; [os.environ.setdefault(k, v) for k, v in {"AIRFLOW_HOME": "$ROOT/.local/airflow", "AIRFLOW__CORE__DAGS_FOLDER": "$ROOT/dags", "AIRFLOW__CORE__PLUGINS_FOLDER": "$ROOT/plugins", "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30", "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": "8080", "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO", "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": "$ROOT/.venv/bin/python", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}.items()]
PTH
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; exit 1; }
echo "venv ready: $ROOT/.venv"
