"""Registry mode: the Confluent-compatible schema registry the worker, ``produce`` and
``consume`` use when ``schema_registry.url`` is set.

Belongs here: the one HTTP client of the registry (:mod:`.client`) and what the worker does with
it at run time (:mod:`.wire`: registering output schemas on start-up, looking up writer schemas
by id with a cache and back-off). Does not belong here: the wire format itself, subject names
and schema resolution (pure, in ``schemas.framing`` and ``schemas.codecs``), or running a local
registry (``streams.kafka.local_registry``).
"""
