"""Developer scripts: local Airflow (`make up`), the demo, sample-data upload, Composer deploy."""
