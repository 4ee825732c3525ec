"""The operational store (PostgreSQL): connections, migrations and the queries the stages run."""
