"""``nerstream autoscale``: the lag-based autoscaler (``run``, the default) and ``simulate``."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from types import FrameType

from errors import EXIT_OK
from streams.cli.common import Subparsers, progress, setting_flag
from streams.settings import Settings

SIMULATE_COMMAND = "nerstream autoscale simulate"


def cmd_autoscale(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "simulate":
        return _simulate(args, settings)
    return _run(args, settings)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.autoscale.policy import PolicyConfig
    from streams.autoscale.simulate import compare, default_traces, simulation_report

    config = PolicyConfig.from_settings(settings.autoscale)
    results = compare(config)
    if args.output == "json":
        print(json.dumps([vars(r) for r in results], indent=2))
    else:
        print(simulation_report(config, results, SIMULATE_COMMAND, traces=default_traces()))
    return EXIT_OK


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.autoscale.controller import Controller, ScaleTarget
    from streams.autoscale.lag import LagReader
    from streams.autoscale.policy import PolicyConfig
    from streams.autoscale.telemetry import AutoscaleMetrics

    scaling = settings.autoscale
    reader = LagReader(settings.kafka, settings.worker.group_id, settings.topics.inputs)
    target: ScaleTarget | None = None
    processes = None
    if not args.dry_run:
        if scaling.target == "kubernetes":
            from streams.autoscale.kube import DeploymentTarget, api_client

            api, namespace = api_client(scaling)
            target = DeploymentTarget(api, namespace, scaling.deployment)
        else:
            from streams.autoscale.processes import LocalProcesses, settings_environment

            processes = LocalProcesses(settings_environment(settings), scaling.data_dir)
            target = processes
    metrics = AutoscaleMetrics()
    if scaling.metrics_port:
        metrics.serve(scaling.metrics_host, scaling.metrics_port)
    controller = Controller(
        reader,
        target,
        PolicyConfig.from_settings(scaling),
        metrics,
        dry_run=args.dry_run,
        log=progress,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    progress(
        f"autoscale: group {settings.worker.group_id} on {','.join(settings.topics.inputs)}, "
        f"target {'none (dry run)' if args.dry_run else scaling.target}, "
        f"every {scaling.interval_s:g} s"
    )
    try:
        if args.once:
            controller.tick()  # its errors become the exit code
        else:
            controller.run(scaling.interval_s, stop)
    finally:
        if processes is not None:
            processes.close()
        reader.close()
    return EXIT_OK


def add_autoscale(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "autoscale",
        help="scale the worker group on the time its backlog needs to drain",
        description="run (default): read the group's lag every interval and scale the "
        "workers (autoscale.* settings); simulate: compare the policy with KEDA's rule on "
        "traffic traces.",
    )
    parser.add_argument("action", nargs="?", choices=["run", "simulate"], default="run")
    parser.add_argument(
        "--dry-run", action="store_true", help="only print decisions; touch no scale target"
    )
    parser.add_argument("--once", action="store_true", help="one decision, then exit")
    parser.add_argument(
        "--output", choices=["markdown", "json"], default="markdown", help="simulate's output"
    )
    setting_flag(parser, "--target", "autoscale.target", "kubernetes or processes")
    setting_flag(parser, "--interval", "autoscale.interval_s", "seconds between decisions")
    setting_flag(parser, "--min-replicas", "autoscale.min_replicas", "fewest replicas")
    setting_flag(parser, "--max-replicas", "autoscale.max_replicas", "most replicas")
    setting_flag(parser, "--drain-target", "autoscale.drain_target_s", "seconds to drain lag")
    setting_flag(parser, "--group", "worker.group_id", "consumer group to watch")
    parser.set_defaults(handler=cmd_autoscale)
