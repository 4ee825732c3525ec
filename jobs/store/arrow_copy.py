"""Arrow record batches into PostgreSQL with COPY: no Python object per row.

PostgreSQL refuses ``COPY FROM`` into a table under row-level security, so rows for such a table are copied into
a temporary table of the same columns first and moved with one ``INSERT ... SELECT``, which the table's policy
checks (``copy_through_stage``).
"""
from __future__ import annotations

import io
from typing import Iterable


def arrow_batches(df) -> list:
    """The rows of a Spark DataFrame on the driver as Arrow record batches (``toArrow`` from PySpark 4 on)."""
    if hasattr(df, "toArrow"):
        return df.toArrow().to_batches()
    return df._collect_as_arrow()


def copy_arrow(conn, table: str, columns: list[str], batches: Iterable) -> int:
    """COPY Arrow record batches into ``table``: each batch is written as CSV by Arrow's C++ writer and
    sent as one block. Arrow writes a null as an empty unquoted field and an empty string as ``""``, which is
    exactly how PostgreSQL's CSV COPY tells them apart. Returns rows."""
    import pyarrow.csv as pcsv

    options = pcsv.WriteOptions(include_header=False)
    rows = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            buffer = io.BytesIO()
            pcsv.write_csv(batch.select(columns), buffer, options)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows


def copy_through_stage(conn, table: str, columns: list[str], batches: Iterable) -> int:
    """``copy_arrow`` into a table under row-level security: through a temporary table (dropped at commit)."""
    stage = f"{table}_copy_stage"
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DROP")
    rows = copy_arrow(conn, stage, columns, batches)
    conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {stage}")
    conn.execute(f"DROP TABLE {stage}")
    return rows
