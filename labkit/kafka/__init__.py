"""The Kafka core: the plumbing every producer, consumer and admin client in labkit shares.

Nothing here knows an image or a model: the processor, the history sink, re-embedding and the
console all build on these modules.

    engines         the brokers labkit starts: Tansu in memory, Apache Kafka in KRaft mode (1–9 nodes)
    client_config   librdkafka settings for producers, consumers and admin clients, each with its reason
    admin           topics: create, list, describe with offsets and lag, read back; groups and their members
    offsets         end offsets, a group's position and lag, and reading a set of topics to their end
    producer        a producer that can be replaced by a fresh one, and waiting for acknowledgements
    checkpoint      produce, wait for the broker's acknowledgement, commit, or rewind with a fresh producer
    transaction     exactly-once: a batch's output and its consumed offsets in one Kafka transaction
    group_errors    a group's refusal to let a member join, as an error that says what to change
    partitioning    which partition a key lands in: librdkafka's CRC32 vs Java's murmur2
    failover        who leads a partition or coordinates a group, and how long a move takes
    replicas        each partition's leader, replicas and ISR, and waiting for them to change
    rebalance_watch  a group's members in threads under a steady feed: what each rebalance paused, per partition
    console         `labkit topics` at a terminal: tail a topic readably, measure a consumer's throughput
    tools           Kafka's own command-line tools (kafka-topics, kafka-consumer-groups…) from the engine's jars
"""
