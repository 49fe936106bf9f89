"""The stream worker at runtime: Kafka records in, entity events and dead letters out.

Belongs here: the Faust app factory (:mod:`.app`), the NER agents, health views and lag timer
(:mod:`.agents`), the pure batch pipeline (:mod:`.pipeline`), the confluent-kafka output
producer and its retry policy (:mod:`.producer`), Prometheus metrics and the lag rule
(:mod:`.telemetry`), JSON logs (:mod:`.logs`) and the pass-through smoke-test app
(:mod:`.passthrough`).

Does not belong here: argument parsing and exit codes (``streams.cli``), developer Kafka tooling
such as topic admin or the local broker (``streams.kafka``), model code (``models``), the Avro
contract (``schemas``), and anything that imports torch or ``training``.
"""
