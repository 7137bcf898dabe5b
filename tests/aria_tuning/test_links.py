"""Console links survive DAG serialization (what the UI renders) and the plugin registers them."""

from __future__ import annotations

from aria_tuning.links import VertexEndpointLink, VertexModelLink, VertexTuningJobLink

LINKS = {link.name: link.key for link in (VertexTuningJobLink, VertexModelLink, VertexEndpointLink)}


def test_serialized_operator_keeps_its_console_links(airflow_db: None) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from tests.aria_tuning.dags import components_flow

    dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(components_flow.palm_flow))
    links = {
        task: {name: link.xcom_key for name, link in dag.get_task(task).operator_extra_link_dict.items()}
        for task in ("tune", "register", "deploy")
    }
    # Each link points at the resource the run keeps (#14): tune its run, register the kept version.
    assert links["tune"] == {VertexTuningJobLink.name: VertexTuningJobLink.key}
    assert links["register"] == {VertexModelLink.name: VertexModelLink.key}
    assert links["deploy"] == {VertexEndpointLink.name: VertexEndpointLink.key}


def test_plugin_registers_every_link() -> None:
    from aria_tuning_plugin import AriaTuningPlugin

    registered = {link.name: link.xcom_key for link in AriaTuningPlugin.operator_extra_links}
    assert LINKS.items() <= registered.items()
