"""The record formats: what labkit writes into Kafka and reads back, and the rules for changing them.

Each task's own answer inside a result is the task's model (``labkit.tasks``); the envelope is here.

    versions        schema versions: MAJOR.MINOR in the labkit-schema header, and what a reader accepts
    wire            the image request and the result envelope, and their headers
    serde           serializers and deserializers: a result as JSON bytes and back, checked against its schema
    embeddings      the image-embedding record: one CLIP vector per request, float16, keyed by request id
    dead_letters    a record no task can use: parked unchanged, with headers saying why and where it failed
"""
