"""Create the FAB auth manager's ``Reconciliation`` resource and role, once per deployment, after ``airflow db
migrate`` (run with the Airflow environment, e.g. ``python infra/airflow/reconciliation_role.py``; idempotent).

The Reconciliation page (``plugins/recon_ui.py``) asks the auth manager whether a user may use the custom view
``Reconciliation``: ``can_read`` to look, ``can_create`` to act (assign, propose, approve). FAB only grants
permissions on resources it knows, and it learns a plugin's resource from no one, so this creates the resource, its
three permissions (``menu_access`` too, for the navigation link), and a role of the same name holding them; the Admin
role gets them as well. Give the role to people through the identity provider's groups (``RECON_SSO_GROUP_ROLES``,
``infra/airflow/webserver_config.py``), e.g. ``{"finance-recon": ["Viewer", "Reconciliation"]}``.
"""
from __future__ import annotations

RESOURCE = "Reconciliation"
ROLE = "Reconciliation"
ACTIONS = ("can_read", "can_create", "menu_access")


def ensure_role() -> list[str]:
    """Create what is missing; returns what was added."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    added = []
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role = sm.find_role(ROLE) or sm.add_role(ROLE)
        admin = sm.find_role(sm.auth_role_admin) or sm.add_role(sm.auth_role_admin)
        for action in ACTIONS:
            permission = sm.get_permission(action, RESOURCE) or sm.create_permission(action, RESOURCE)
            for holder in (role, admin):
                if permission not in holder.permissions:
                    sm.add_permission_to_role(holder, permission)
                    added.append(f"{holder.name}: {action} on {RESOURCE}")
    return added


if __name__ == "__main__":
    done = ensure_role()
    print("\n".join(done) if done else f"role {ROLE!r} and resource {RESOURCE!r} already in place")
