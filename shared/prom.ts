/**
 * Prometheus text exposition (format 0.0.4) for the proxy's and the nodes' `/metrics`:
 * labelled counters, gauges and histograms kept per app (never per process), rendered
 * with their `# HELP` and `# TYPE` lines. Pure: callers pass the values in.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Counter, Histogram, render } from "./prom.ts";
 * const requests = new Counter("demo_requests_total", "Requests.", ["route", "status"]);
 * requests.inc({ route: "/kv/{key}", status: "200" });
 * const latency = new Histogram("demo_seconds", "Latency.", ["route"], [0.01, 0.1]);
 * latency.observe({ route: "/kv/{key}" }, 0.004);
 * const text = render([requests, latency]);
 * assert(text.includes('demo_requests_total{route="/kv/{key}",status="200"} 1'));
 * assert(text.includes('demo_seconds_bucket{route="/kv/{key}",le="0.01"} 1'));
 * ```
 */

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Latency buckets in seconds, 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  10,
];

/** Something that renders itself as Prometheus text lines. */
export interface Metric {
  lines(): string[];
}

/** Escapes a label value (backslash, double quote, newline). */
export function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** `{a="x",b="y"}`, or "" without labels. */
export function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A number as Prometheus writes it. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function header(name: string, help: string, type: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
}

abstract class Labelled<T> implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected entry(labels: Labels, init: () => T): { labels: Labels; value: T } {
    const ordered: Record<string, string> = {};
    for (const name of this.labelNames) ordered[name] = labels[name] ?? "";
    const key = JSON.stringify(Object.values(ordered));
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels: ordered, value: init() };
      this.series.set(key, found);
    }
    return found;
  }

  protected sorted(): { labels: Labels; value: T }[] {
    return [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, v]) => v);
  }

  abstract lines(): string[];
}

/** A counter with labels; only goes up. */
export class Counter extends Labelled<number> {
  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }

  /** The series of `labels` itself, for callers that count on a hot path (`.value += 1`). */
  seriesOf(labels: Labels = {}): { value: number } {
    return this.entry(labels, () => 0);
  }

  /** The current value of one series (0 when never counted). */
  get(labels: Labels = {}): number {
    return this.entry(labels, () => 0).value;
  }

  /** The text lines. */
  lines(): string[] {
    return [
      ...header(this.name, this.help, "counter"),
      ...this.sorted().map((s) => `${this.name}${labelText(s.labels)} ${formatValue(s.value)}`),
    ];
  }
}

/** A histogram with labels and fixed buckets (upper bounds, ascending). */
export class Histogram extends Labelled<{ counts: number[]; sum: number; count: number }> {
  /** Creates the histogram; `buckets` are upper bounds in ascending order. */
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, labelNames);
  }

  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    this.record(this.seriesOf(labels), value);
  }

  /** The series of `labels` itself, for callers that observe on a hot path (see `record`). */
  seriesOf(labels: Labels): { counts: number[]; sum: number; count: number } {
    return this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }))
      .value;
  }

  /** Records one observation in a series got from `seriesOf`. */
  record(s: { counts: number[]; sum: number; count: number }, value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** The text lines: cumulative `_bucket` series, `le="+Inf"`, `_sum` and `_count`. */
  lines(): string[] {
    const out = header(this.name, this.help, "histogram");
    for (const { labels, value } of this.sorted()) {
      this.buckets.forEach((le, i) => {
        const l = labelText({ ...labels, le: formatValue(le) });
        out.push(`${this.name}_bucket${l} ${value.counts[i]}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${value.count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${formatValue(value.sum)}`);
      out.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return out;
  }
}

/** A gauge whose series are given when rendered (sizes, states read at scrape time). */
export function gauge(
  name: string,
  help: string,
  series: readonly { labels?: Labels; value: number }[],
): Metric {
  return {
    lines: () => [
      ...header(name, help, "gauge"),
      ...series.map((s) => `${name}${labelText(s.labels ?? {})} ${formatValue(s.value)}`),
    ],
  };
}

/**
 * Per-request series resolved once per `method route status` (a map look-up, no label objects),
 * and a run of like requests skips even that: the last request's series is kept. Methods outside
 * `methods` share the label "other".
 */
export class RequestSeries<T> {
  readonly #byName = new Map<string, T>();
  // The last request's labels and series, as fields: a miss allocates nothing but a new series.
  #lastMethod = "";
  #lastRoute = "";
  #lastStatus = -1;
  #lastSeries: T | undefined;

  constructor(
    private readonly methods: ReadonlySet<string>,
    private readonly make: (method: string, route: string, status: number) => T,
  ) {}

  /** The series of a request answered with `status`. */
  of(method: string, route: string, status: number): T {
    if (
      this.#lastSeries !== undefined && this.#lastStatus === status &&
      this.#lastRoute === route && this.#lastMethod === method
    ) return this.#lastSeries;
    const label = this.methods.has(method) ? method : "other";
    const name = label + " " + route + " " + status;
    let series = this.#byName.get(name);
    if (series === undefined) {
      series = this.make(label, route, status);
      this.#byName.set(name, series);
    }
    this.#lastMethod = method;
    this.#lastRoute = route;
    this.#lastStatus = status;
    this.#lastSeries = series;
    return series;
  }
}

/** The whole exposition text of `metrics`, ending with a newline. */
export function render(metrics: readonly Metric[]): string {
  return metrics.flatMap((m) => m.lines()).join("\n") + "\n";
}

/** The content type of the text format. */
export const PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
