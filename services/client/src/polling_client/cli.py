"""The command line: flags, their validation, and the options they make.

Every bad flag gives one line (``client poll: error: --rate: ...``) and exit
status 2; defaults of the main flags come from environment variables (see
:mod:`polling_client.settings`).
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from servicekit import durations
from servicekit.settings import load_or_exit
from servicekit.urls import base_url

from polling_client.poll import PollOptions
from polling_client.settings import ClientSettings, load_settings
from polling_client.thresholds import Thresholds
from polling_client.workload import DEFAULT_MIX, Operation, parse_mix

PROGRAM = "client"


@dataclass(frozen=True)
class PollCommand:
    options: PollOptions
    max_error_rate: float
    output_format: str


@dataclass(frozen=True)
class CompareCommand:
    source: str  # "agent" (an APM test agent, local or port-forwarded) or "datadog"
    agent_url: str
    since_s: float  # the query window: spans of this last period, from any source
    warmup_s: float  # each version's first seconds in the window, skipped
    datadog_url: str | None  # --datadog: the API base URL (None: https://api.$DD_SITE)
    plot_panels: int
    service: str
    env: str | None
    baseline: str
    canary: str
    thresholds: Thresholds
    plot: Path | None
    resources: tuple[str, ...]
    timeout_s: float
    output_format: str


@dataclass(frozen=True)
class CanaryCommand:
    analysis: CompareCommand  # what each step's analysis reads and judges by
    steps: tuple[int, ...]  # canary weights in percent, increasing, ending at 100
    interval_s: float  # each step's length (and each hold's)
    max_holds: int  # analyses that may say hold in one step before rolling back
    rate: float  # requests/s the canary sends through the gateway; 0: none of its own
    gateway_url: str
    mix: dict[Operation, int]  # of the --rate load
    weights_file: Path  # the local gateway's (devstack.gateway.weights)
    kube: bool  # the kind cluster's VirtualServices instead (polling_client.kube)
    kubectl: str
    kube_context: str
    output_format: str


def parse_steps(text: str) -> tuple[int, ...]:
    """``10,25,50,100`` -> (10, 25, 50, 100): increasing percentages, ending at 100."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("expected comma-separated integers, e.g. 10,25,50,100") from None
    if any(not 0 < step <= 100 for step in steps):
        raise ValueError("each step must be from 1 to 100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError("steps must increase")
    if steps[-1] != 100:
        raise ValueError("the last step must be 100 (the canary takes every request)")
    return steps


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _checked(kind: str, parse: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}: {exc}") from None

    convert.__name__ = kind
    return convert


def _number_in(low: float, high: float, *, integer: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(int(text)) if integer else float(text)
        if not low <= value <= high:
            raise ValueError(f"expected {low:g} to {high:g}")
        return value

    return parse


_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``1.5m``, ``2h``, ``500ms`` -> seconds (> 0): a bare number is seconds."""
    value = "".join(text.split())
    try:
        seconds = float(value) if _SECONDS.fullmatch(value) else durations.parse_duration(value)
    except ValueError:
        raise ValueError("expected a number with an optional unit ms, s, m or h") from None
    if seconds <= 0:
        raise ValueError("must be above 0")
    return seconds


def _duration_or_zero(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0s") else parse_duration(text)


def _version(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", text):
        raise ValueError("expected a version name like v1")
    return text


class _Flags:
    """Adds flags to a parser or one of its groups, in the shapes both commands share.

    A value is checked by its parser as argparse reads it: a bad one is one
    line, ``client poll: error: argument --rate: '-1' is not a rate: ...``.
    """

    def __init__(self, target: argparse._ActionsContainer) -> None:
        self.target = target

    def checked(
        self, flag: str, kind: str, parse: Callable[[str], object], help: str, **extra: Any
    ) -> None:
        self.target.add_argument(flag, type=_checked(kind, parse), help=help, **extra)

    def url(self, flag: str, default: str | None, help: str) -> None:
        self.checked(flag, "a URL", base_url, help, default=default)

    def duration(self, flag: str, default: float | None, help: str) -> None:
        self.checked(flag, "a duration", parse_duration, help, default=default)

    def number(
        self,
        flag: str,
        kind: str,
        limits: tuple[float, float],
        default: float | None,
        help: str,
        *,
        integer: bool = False,
    ) -> None:
        low, high = limits
        self.checked(flag, kind, _number_in(low, high, integer=integer), help, default=default)

    def version(self, flag: str, default: str | None, help: str) -> None:
        self.checked(flag, "a version", _version, help, default=default)

    def output_format(self) -> None:
        self.target.add_argument("--format", choices=("table", "json"), default="table")


def build_parser(settings: ClientSettings) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description="Drive traffic through the entry point and compare v1 with v2.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_poll(commands, settings)
    _add_compare(commands, settings)
    _add_canary(commands, settings)
    return parser


def _add_canary(commands: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    canary = commands.add_parser(
        "canary",
        help="roll the canary out step by step, judged by compare's analysis at each step",
        description=(
            "A progressive rollout of the local stack's text-to-speech canary: set the"
            " canary's weight at the local gateway (through its weights file) to each of"
            " --steps in turn; at the end of each --interval run compare's analysis on that"
            " step's spans only. PROMOTE: next step. ROLL BACK: every request to the"
            " baseline, exit status 1. HOLD: one more --interval, analysed again from the"
            " step's start, up to --max-holds times, then roll back. The last step (100)"
            " is the promotion itself: it is set, not analysed (no baseline traffic is"
            " left to compare with)."
        ),
        epilog=(
            "One live line per step on stderr, a table (or --format json) of the steps on"
            " stdout. Ctrl-C restores the weights found at start and says so (exit status"
            " 130). Checked before any weight changes: the source answers, the gateway"
            " answers (with --rate), the weights file can be written (exit status 1 for an"
            " unreachable source or gateway, 2 for a bad flag or a weights file that cannot"
            " be written). A step whose analysis cannot run (no spans of the step) restores"
            " the weights found at start, exit status 1. Load during each step: --rate"
            " requests/s of `client poll`'s mix through --gateway; without it, the traffic"
            " that reaches the gateway anyway (the stack's own client polls at 2/s)."
        ),
    )
    _analysis_flags(canary, settings)
    flags = _Flags(canary)
    flags.checked(
        "--steps",
        "a list of steps",
        parse_steps,
        "canary weights in percent, increasing, the last 100 (default 10,25,50,100)",
        default=(10, 25, 50, 100),
    )
    flags.duration("--interval", 60.0, "length of each step, e.g. 60s (default %(default)ss)")
    flags.number(
        "--max-holds",
        "a count",
        (0, 100),
        2,
        "hold verdicts a step may get before rolling back (default %(default)s)",
        integer=True,
    )
    flags.number(
        "--rate",
        "a rate",
        (0, 10_000),
        0.0,
        "requests per second sent through --gateway during each step (default 0: none)",
    )
    flags.url("--gateway", settings.gateway_url, "entry point for --rate (default %(default)s)")
    flags.checked(
        "--mix",
        "a mix",
        parse_mix,
        "--rate: operation weights (default %(default)s)",
        default=DEFAULT_MIX,
    )
    canary.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the canary's weight and each analysis' verdict over time to a PNG",
    )
    canary.add_argument(
        "--kube",
        action="store_true",
        help="set the weights of the kind cluster's weighted VirtualServices (text-to-speech,"
        " edge in namespace apps) with kubectl instead of the local gateway's weights file;"
        " any kube context but --kube-context is refused",
    )
    canary.add_argument("--kubectl", default="kubectl", help="--kube: kubectl to run (%(default)s)")
    canary.add_argument(
        "--kube-context",
        default="kind-speech-mesh",
        help="--kube: the only context accepted, the local kind cluster's (%(default)s)",
    )
    canary.add_argument(
        "--weights-file",
        type=Path,
        default=Path("data/.stack/weights.json"),
        metavar="PATH",
        help="the local gateway's weights file: DATA_DIR/.stack/weights.json of `stack up`"
        " (default %(default)s)",
    )
    flags.output_format()


def _add_poll(commands: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    poll = commands.add_parser(
        "poll",
        help="send user traffic and tally which version answered",
        description=(
            "Exercise the entry point like a user (POST /books, GET /books, POST /speech,"
            " GET the audio, GET /), tally answers per version from the x-tts-version"
            " header, print a live line on stderr and a final table on stdout."
            " Exit status 1 when the error rate is above --max-error-rate."
        ),
        epilog=(
            "Environment defaults: GATEWAY_URL, POLL_BOOKS_URL, POLL_RATE,"
            " POLL_CONCURRENCY, MAX_ERROR_RATE, POLL_WAIT_S. Without --count or --duration it"
            " polls until Ctrl-C / SIGTERM, then prints the table."
        ),
    )
    flags = _Flags(poll)
    flags.url("--gateway", settings.gateway_url, "entry point URL (default %(default)s)")
    flags.url(
        "--books",
        settings.books_url,
        "where /books lives, if not behind the gateway (default: the gateway)",
    )
    flags.number(
        "--rate",
        "a rate",
        (0, 10_000),
        settings.rate,
        "requests per second, paced by scheduled ticks; 0 = as fast as"
        " --concurrency allows (default %(default)s)",
    )
    stop = _Flags(poll.add_mutually_exclusive_group())
    stop.duration("--duration", None, "stop after this long: 30, 30s, 2m, 1h")
    stop.number(
        "--count", "a count", (1, 100_000_000), None, "stop after this many requests", integer=True
    )
    flags.number(
        "--max-error-rate",
        "a rate",
        (0, 1),
        settings.max_error_rate,
        "fail (exit 1) when errors/requests is above this, 0-1 (default %(default)s)",
    )
    flags.number(
        "--concurrency",
        "a count",
        (1, 1024),
        settings.concurrency,
        "requests in flight at most, also the connection pool size (default %(default)s)",
        integer=True,
    )
    flags.duration("--timeout", 10.0, "per-request timeout (default %(default)ss)")
    flags.checked(
        "--mix", "a mix", parse_mix, "operation weights (default %(default)s)", default=DEFAULT_MIX
    )
    flags.version("--canary", None, "send x-canary: VERSION to pin the text-to-speech version")
    flags.checked(
        "--wait",
        "a duration",
        _duration_or_zero,
        "wait up to this long for the entry point to answer before starting"
        " (default %(default)ss: fail at once)",
        default=settings.wait_s,
    )
    poll.add_argument(
        "--heartbeat",
        type=Path,
        metavar="FILE",
        default=settings.heartbeat_file,
        help="touch this file while the poll loop makes progress, at most once a second"
        " (a liveness probe checks its age; default: none)",
    )
    flags.output_format()


def _add_compare(commands: argparse._SubParsersAction[_Parser], settings: ClientSettings) -> None:
    defaults = Thresholds()
    compare = commands.add_parser(
        "compare",
        help="compare v1 and v2 per resource, from an APM test agent or Datadog",
        description=(
            "Take the entry spans of the text-to-speech service, from the Datadog APM"
            " test agent (GET /test/traces: the local stack's, or the cluster's through"
            " Tilt's port forward) or from Datadog's API (--datadog), and compare the"
            " baseline and the canary per resource (route template, e.g. 'POST /speech'),"
            " with one overall verdict."
        ),
        epilog=(
            "Every answer is a success (2xx/3xx), a rejection (4xx) or a failure (5xx; an"
            " error span without a status counts as one). Statistics, per resource:"
            " latency of successful answers - one-sided Mann-Whitney U test (is the"
            " canary slower?); 5xx rate and 4xx rate - one-sided Fisher exact tests (does"
            " the canary fail or reject more?); and over all resources the mix - G-test on"
            " version x resource (do both serve the same requests?). The p-values of all"
            " tests are adjusted with Holm's step-down method (Holm-Bonferroni), so the"
            " family-wise error stays at --alpha. A request retried by the gateway or the"
            " mesh (several entry spans of one trace) counts once, by its last attempt. Probe"
            " traffic is left out and counted in a note (GET /healthz, GET /readyz, GET"
            " /livez, or a User-Agent starting kube-probe/: every pod is probed alike, which"
            " would skew the mix). Only the period where both versions served is compared"
            " (after each one's --warmup), and it is printed. ROLL BACK when a resource has"
            " a significant (adjusted p < --alpha) AND material regression (median latency"
            " above baseline by more than --latency-margin, or 5xx or 4xx rate above"
            " baseline by more than --error-margin; the output says which), or when the"
            " canary alone serves a resource (at least --min-samples requests) with failures"
            " or rejections. HOLD"
            " when a resource has fewer than --min-samples requests in either version, a"
            " regression is significant but within the margin, a resource with at least"
            " --min-samples requests is served by one version only, or the resource mix"
            " differs significantly. PROMOTE otherwise."
            f" Defaults: alpha {defaults.alpha}, latency margin {defaults.latency_margin},"
            f" error margin {defaults.error_margin}, min samples {defaults.min_samples}."
            " --datadog reads DD_API_KEY, DD_APP_KEY and DD_SITE from the environment"
            " (DATADOG_API_URL or --datadog-url overrides the API address)."
            " Exit status 0 with a verdict, 1 when the source is unreachable, answers"
            " something unexpected or holds no text-to-speech spans, 2 on a bad flag or"
            " missing/refused Datadog keys."
        ),
    )
    _analysis_flags(compare, settings)
    _Flags(compare).duration(
        "--since",
        1800.0,
        "only spans of this last period, from the test agent or Datadog, e.g. 30m, 2h"
        " (default 30m); fixed once as absolute times",
    )
    compare.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the latency distributions to a PNG, one panel per resource",
    )
    _Flags(compare).number(
        "--plot-panels",
        "a count",
        (1, 24),
        6,
        "--plot: draw the N busiest resources (default %(default)s)",
        integer=True,
    )
    _Flags(compare).output_format()


def _analysis_flags(parser: argparse.ArgumentParser, settings: ClientSettings) -> None:
    """The flags of the analysis `compare` and each step of `canary` share."""
    defaults = Thresholds()
    source = parser.add_mutually_exclusive_group()
    _Flags(source).url(
        "--agent",
        settings.agent_url,
        "APM test agent URL (default %(default)s; environment AGENT_URL). In the"
        " cluster: the port forward of `tilt up -- --apm=test-agent`",
    )
    source.add_argument(
        "--datadog",
        action="store_true",
        help="read the spans from Datadog's API (Search spans) instead of a test agent",
    )
    flags = _Flags(parser)
    flags.checked(
        "--warmup",
        "a duration",
        _duration_or_zero,
        "skip each version's first seconds of the window, e.g. 30s (default 0)",
        default=0.0,
    )
    flags.url(
        "--datadog-url",
        settings.datadog_api_url,
        "--datadog: API base URL (default https://api.$DD_SITE; environment DATADOG_API_URL)",
    )
    parser.add_argument("--service", default="text-to-speech", help="service name (%(default)s)")
    parser.add_argument("--env", help="only spans with this env tag (default: all)")
    flags.version("--baseline", "v1", "(%(default)s)")
    flags.version("--canary", "v2", "(%(default)s)")
    flags.number(
        "--alpha",
        "a probability",
        (1e-9, 0.5),
        defaults.alpha,
        "significance level of each one-sided test (default %(default)s)",
    )
    flags.number(
        "--latency-margin",
        "a fraction",
        (0, 100),
        defaults.latency_margin,
        "tolerated relative increase of the median latency (default %(default)s = +10%%)",
    )
    flags.number(
        "--latency-floor-ms",
        "milliseconds",
        (0, 1e6),
        defaults.latency_floor_ms,
        "tolerated absolute increase of the median latency, whatever the ratio: on a"
        " sub-millisecond resource +10%% is noise (default %(default)s)",
    )
    flags.number(
        "--error-margin",
        "a fraction",
        (0, 1),
        defaults.error_margin,
        "tolerated absolute increase of the error rate (default %(default)s = +1 point)",
    )
    flags.number(
        "--min-samples",
        "a count",
        (1, 10_000_000),
        defaults.min_samples,
        "requests needed per version of each resource before promoting (default %(default)s)",
        integer=True,
    )
    parser.add_argument(
        "--resource",
        action="append",
        metavar="RESOURCE",
        help="only entry spans of this resource, e.g. 'POST /speech' (repeatable; default all)",
    )
    flags.duration(
        "--timeout", 10.0, "timeout of each agent or Datadog API request (default %(default)ss)"
    )


def parse_command(
    argv: Sequence[str] | None = None,
) -> PollCommand | CompareCommand | CanaryCommand:
    settings = load_or_exit(load_settings, PROGRAM)
    args = build_parser(settings).parse_args(argv)
    if args.command == "poll":
        return PollCommand(
            options=PollOptions(
                gateway_url=args.gateway,
                books_url=args.books,
                rate=float(args.rate),
                count=None if args.count is None else int(args.count),
                duration_s=args.duration,
                concurrency=int(args.concurrency),
                timeout_s=float(args.timeout),
                mix=args.mix,
                canary=args.canary,
                wait_s=float(args.wait),
                heartbeat_file=args.heartbeat,
            ),
            max_error_rate=float(args.max_error_rate),
            output_format=args.format,
        )
    prog = f"{PROGRAM} {args.command}"
    if args.baseline == args.canary:
        _Parser(prog=prog).error("--baseline and --canary must differ")
    plot = getattr(args, "plot", None)
    if plot is not None and plot.suffix.lower() != ".png":
        _Parser(prog=prog).error(f"--plot {plot}: expected a .png file")
    analysis = CompareCommand(
        source="datadog" if args.datadog else "agent",
        agent_url=args.agent,
        since_s=float(getattr(args, "since", 0.0)),
        warmup_s=float(args.warmup),
        datadog_url=args.datadog_url,
        plot_panels=int(getattr(args, "plot_panels", 6)),
        service=args.service,
        env=args.env,
        baseline=args.baseline,
        canary=args.canary,
        thresholds=Thresholds(
            alpha=float(args.alpha),
            latency_margin=float(args.latency_margin),
            latency_floor_ms=float(args.latency_floor_ms),
            error_margin=float(args.error_margin),
            min_samples=int(args.min_samples),
        ),
        plot=plot,
        resources=tuple(args.resource or ()),
        timeout_s=float(args.timeout),
        output_format=args.format,
    )
    if args.command == "compare":
        return analysis
    return CanaryCommand(
        analysis=analysis,
        steps=args.steps,
        interval_s=float(args.interval),
        max_holds=int(args.max_holds),
        rate=float(args.rate),
        gateway_url=args.gateway,
        mix=args.mix,
        weights_file=args.weights_file,
        kube=bool(args.kube),
        kubectl=args.kubectl,
        kube_context=args.kube_context,
        output_format=args.format,
    )
