from google.auth.credentials import AnonymousCredentials
from google.cloud import storage


def test_gcs_emulator_round_trip(gcs_emulator: str) -> None:
    client = storage.Client(project="aria-local", credentials=AnonymousCredentials())
    bucket = client.create_bucket("smoke")
    bucket.blob("a/b.txt").upload_from_string("hola")
    assert [b.name for b in client.list_blobs("smoke", prefix="a/")] == ["a/b.txt"]
    assert bucket.blob("a/b.txt").download_as_bytes() == b"hola"
