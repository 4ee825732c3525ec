-- docker-compose: Airflow's metadata database next to the operational one.
CREATE DATABASE airflow;
