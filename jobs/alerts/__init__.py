"""Alerts: on ingestion (connectors, late files), on failed DAG tasks and runs, and on the outcome of each daily
run; recorded in PostgreSQL, routed by priority to Airflow notifiers.

- ``channels``: the notifier of each channel type (Slack, PagerDuty, SNS, e-mail, HTTP);
- ``record``: raise (one open alert per condition, rate-limited per channel) and resolve (with an all-clear);
- ``outcomes``: the daily run's figures against the tenant's thresholds (``alerts`` in its configuration);
- ``callbacks``: the notifiers every DAG and task gets as ``on_failure_callback`` / ``on_success_callback``.
"""
