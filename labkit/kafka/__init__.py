"""The Kafka core: the engines labkit can start (Tansu, Apache Kafka) and, as it grows, the plumbing every consumer and producer shares."""
