"""Kafka tooling for people and tests: topic admin, the local broker, produce and consume.

Belongs here: the one admin-client wrapper for creating and listing topics (:mod:`.admin`), the
single-node development broker behind ``nerstream local`` (:mod:`.local`) and the schema
registry beside it (:mod:`.local_registry`), reading input files
(:mod:`.files`), producing records (:mod:`.produce`) and reading entity events and dead letters
(:mod:`.consume`).

Does not belong here: the worker's runtime (``streams.worker``; it never imports this package),
argument parsing and exit codes (``streams.cli``), the Avro codecs (``schemas``).
"""
