"""Lag-based autoscaling of the worker group: ``nerstream autoscale``.

Belongs here, one job per module: :mod:`.policy` (pure: offsets over time -> desired replicas,
with the reason), :mod:`.simulate` (pure: replays traffic traces against a consumer-group model,
for this policy and for KEDA's rule), :mod:`.lag` (reads committed offsets and end offsets through
the Kafka admin client), :mod:`.kube` (the Deployment ``scale`` subresource and Events; the only
module that imports ``kubernetes``), :mod:`.processes` (local ``nerstream worker`` processes),
:mod:`.telemetry` (Prometheus metrics) and :mod:`.controller` (the loop that ties them together).

Does not belong here: the worker itself (``streams.worker``), topic administration
(``streams.kafka.admin``), argument parsing (``streams.cli.autoscale``).
"""
