"""Which partition a keyed record lands in: librdkafka's default hash versus the Java client's murmur2.

Every Kafka producer hashes the key and takes it modulo the partition count, but *which* hash
is a client setting, not a broker rule:

* the Java client (and Kafka Streams, Kafka Connect, ksqlDB) uses **murmur2**;
* librdkafka — and so confluent-kafka in Python, Go, .NET — defaults to ``consistent_random``,
  which is **CRC32**.

A Python producer and a Java producer writing the same key can therefore put it in different
partitions, and per-key ordering (or a join keyed by partition) silently breaks. The fix is one
setting on the librdkafka side: ``"partitioner": "murmur2_random"``. These two functions
compute both hashes in plain Python so notebook 02 and the tests can show the difference and
check librdkafka against them.
"""

from __future__ import annotations

import zlib

_MASK32 = 0xFFFFFFFF
_M = 0x5BD1E995  # murmur2's multiplier
_SEED = 0x9747B28C  # the seed the Java client uses


def murmur2(key: bytes) -> int:
    """MurmurHash2 of ``key`` as Kafka's Java client computes it (an unsigned 32-bit value)."""
    h = (_SEED ^ len(key)) & _MASK32
    whole = len(key) - len(key) % 4
    for i in range(0, whole, 4):  # mix in four bytes at a time, little-endian
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = key[whole:]  # the last 1–3 bytes
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    return h ^ (h >> 15)


def java_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client (and librdkafka's ``partitioner=murmur2_random``) picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions  # Java's Utils.toPositive, then modulo


def librdkafka_default_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's default ``consistent_random`` partitioner picks for a non-empty ``key``."""
    return zlib.crc32(key) % partitions
