"""Sign-in for Airflow's UI and the Reconciliation page through the organisation's identity provider (SSO), with the
FAB auth manager (``apache-airflow-providers-fab``).

Point Airflow at it::

    AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
    AIRFLOW__FAB__CONFIG_FILE=/opt/psp-recon/infra/airflow/webserver_config.py
    AIRFLOW__FAB__CUSTOM_ROLES='{"Reconciliation": [{"action": "can_read", "resource": "Reconciliation"},
                                                     {"action": "can_create", "resource": "Reconciliation"},
                                                     {"action": "menu_access", "resource": "Reconciliation"}]}'

and set (``jobs/settings.py`` reads them): ``RECON_OIDC_ISSUER`` (the provider's issuer URL; its
``/.well-known/openid-configuration`` is read), ``RECON_OIDC_CLIENT_ID`` and ``RECON_OIDC_CLIENT_SECRET`` (the
client registered at the provider, redirect URI ``https://<airflow>/auth/oauth-authorized/oidc``), and
``RECON_SSO_GROUP_ROLES``: the Airflow roles each of the provider's groups gives, e.g.
``{"finance-recon": ["Viewer", "Reconciliation"], "platform": ["Admin"]}``. The provider must put the user's groups
in the ``groups`` claim of its userinfo and a ``preferred_username``, which is the name the platform records
(approvals, the audit trail) and grants tenant roles to (``recon access grant --user <preferred_username>``).

Roles are synchronised at every sign-in: removing someone from a group at the provider removes the Airflow role at
their next sign-in (the API server caches a signed-in user's roles for ``[fab] cache_ttl``, 30 s by default).
People outside every mapped group get no role (``Public``): signed in, but the Reconciliation view refuses them
(``plugins/recon_ui.py`` asks the auth manager for the ``Reconciliation`` resource). What they may see and do per
tenant are their tenant roles (operator, approver, controller, auditor, admin; ``tenant_member``).

Without ``RECON_OIDC_ISSUER`` FAB keeps its own user database (``airflow users create``), for a trial only.
"""
from flask_appbuilder.security.manager import AUTH_DB, AUTH_OAUTH

from jobs.settings import load_settings

_settings = load_settings()

WTF_CSRF_ENABLED = True
AUTH_ROLE_PUBLIC = None                      # nothing without signing in
AUTH_USER_REGISTRATION = _settings.oidc_issuer is not None
AUTH_USER_REGISTRATION_ROLE = "Public"       # a user in no mapped group: signed in, no access
AUTH_ROLES_MAPPING = _settings.sso_group_roles
AUTH_ROLES_SYNC_AT_LOGIN = True

if _settings.oidc_issuer:
    AUTH_TYPE = AUTH_OAUTH
    OAUTH_PROVIDERS = [{
        "name": "oidc",
        "icon": "fa-key",
        "token_key": "access_token",
        "remote_app": {
            "client_id": _settings.oidc_client_id,
            "client_secret": _settings.oidc_client_secret,
            "server_metadata_url": _settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            "client_kwargs": {"scope": "openid email profile groups"},
        },
    }]
else:
    AUTH_TYPE = AUTH_DB
