"""The service around the model: three rooms, one job each, and the settings they share.

- :mod:`streams.settings`: the one frozen settings object (every command and room reads it).
- :mod:`streams.worker`: the stream worker at runtime (Faust app, NER agents, pure pipeline,
  output producer, Prometheus metrics, logs).
- :mod:`streams.kafka`: Kafka tooling for people and tests (topic admin, the local broker,
  producing files, consuming outputs); the worker never imports it.
- :mod:`streams.cli`: the one ``nerstream`` command line, thin commands over the rooms above and
  over ``training/``.

The model code lives in ``models/``, the Avro contract in ``schemas/``, the error classes in
``errors``; none of them imports ``streams``.
"""
