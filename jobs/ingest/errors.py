"""Connector errors. Messages name the tenant, the connector and what to check; the Airflow task
shows them as the failure reason."""
from __future__ import annotations


class ConnectorError(RuntimeError):
    """A connector could not finish its run; retrying may help (network, server, rate limit)."""


class ConnectorAuthError(ConnectorError):
    """The remote side refused our credentials: retrying will not help, fix the Airflow connection."""


class ConnectorConfigError(ConnectorError):
    """The connector's configuration is wrong (missing folder, bad pattern): fix it with `recon connector update`."""


class FileLateError(ConnectorError):
    """An expected delivery did not arrive by the end of its delivery window."""


PERMANENT_ERRORS = (ConnectorAuthError, ConnectorConfigError, FileLateError)
