"""psp-recon job code: one importable package used by the DAGs, the tests, the ``recon`` CLI and
spark-submit (shipped as a zip/wheel to EMR / Glue).

Keep this module free of heavy imports: Airflow parses DAG files that import from here.
"""
__version__ = "0.1.0"
