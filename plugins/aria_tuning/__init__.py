"""ARIA-text tuning on Vertex AI: pure logic (catalog, dataset prep, planning) and Airflow components.

Importing this package, or any Airflow component in it, never imports a Google client library:
those are imported inside the methods that need them, so DAG parsing stays cheap.
"""
