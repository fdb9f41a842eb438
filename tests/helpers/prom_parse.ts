/**
 * A strict parser of the Prometheus text format (0.0.4) for tests: every sample must
 * belong to a family declared by `# TYPE` before it, families are contiguous, names,
 * labels and values are well formed, no series appears twice, counters are not
 * negative, and histograms have ascending `le`, cumulative buckets and a `+Inf`
 * bucket equal to `_count`. Anything else throws with the line number.
 *
 * @module
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family. */
export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`${where}: "${text}" is not a number`);
  }
  return Number(text);
}

/** Reads `{a="x",b="y"}` starting at `text[0] === "{"`; returns labels and the rest. */
function parseLabels(text: string, where: string): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let i = 1;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    if (eq === -1) throw new Error(`${where}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label "${name}" twice`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const next = text[++j];
        if (next === "n") value += "\n";
        else if (next === "\\" || next === '"') value += next;
        else throw new Error(`${where}: bad escape "\\${next}"`);
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`${where}: unterminated label value`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`${where}: expected "," or "}" after a label`);
  }
  return [labels, text.slice(i + 1)];
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ["_bucket", "_sum", "_count", ""]) {
    if (!name.endsWith(suffix)) continue;
    const f = families.get(name.slice(0, name.length - suffix.length));
    if (f && (suffix === "" || f.type === "histogram" || f.type === "summary")) return f;
  }
  return undefined;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([^\s{]+)(.*)$/.exec(line)!;
  const name = m[1]!;
  if (!NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
  let rest = m[2]!;
  let labels: Record<string, string> = {};
  if (rest.startsWith("{")) [labels, rest] = parseLabels(rest, where);
  const parts = rest.trim().split(" ");
  if (!rest.startsWith(" ") || parts.length < 1 || parts.length > 2) {
    throw new Error(`${where}: expected "<name>{labels} <value> [timestamp]"`);
  }
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) {
    throw new Error(`${where}: bad timestamp "${parts[1]}"`);
  }
  return { name, labels, value: parseValue(parts[0]!, where) };
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
    const count = samples.find((s) => s.name === `${f.name}_count`);
    if (!samples.some((s) => s.name === `${f.name}_sum`) || count === undefined) {
      throw new Error(`histogram ${f.name}${key}: _sum or _count missing`);
    }
    let lastLe = -Infinity;
    let lastCount = 0;
    for (const b of buckets) {
      if (b.labels.le === undefined) throw new Error(`histogram ${f.name}: bucket without le`);
      const le = parseValue(b.labels.le, `histogram ${f.name}`);
      if (!(le > lastLe)) throw new Error(`histogram ${f.name}${key}: le not ascending`);
      if (b.value < lastCount) throw new Error(`histogram ${f.name}${key}: buckets not cumulative`);
      [lastLe, lastCount] = [le, b.value];
    }
    if (lastLe !== Infinity || lastCount !== count.value) {
      throw new Error(`histogram ${f.name}${key}: +Inf bucket missing or not equal to _count`);
    }
  }
}

/** Parses exposition text strictly; the families in order of appearance. */
export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition does not end with a newline");
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, n) => {
    const where = `line ${n + 1} "${line}"`;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      let f = families.get(name);
      if (f === undefined) {
        f = { name, type: "untyped", help: "", samples: [] };
        families.set(name, f);
      } else if (f !== current || f.samples.length > 0) {
        throw new Error(`${where}: ${kind} for ${name} after its samples or a second time`);
      }
      current = f;
      if (kind === "HELP") f.help = rest;
      else if (!TYPES.has(rest)) throw new Error(`${where}: unknown type "${rest}"`);
      else f.type = rest as Family["type"];
      return;
    }
    if (line.trim() === "") throw new Error(`${where}: blank line`);
    const sample = parseSample(line, where);
    const f = familyOf(sample.name, families);
    if (f === undefined || f !== current) {
      throw new Error(`${where}: sample outside its family's block (no # TYPE before it)`);
    }
    const id = sample.name + JSON.stringify(Object.entries(sample.labels).sort());
    if (series.has(id)) throw new Error(`${where}: series repeated`);
    series.add(id);
    if (f.type === "counter" && !(sample.value >= 0)) throw new Error(`${where}: counter < 0`);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

/** The value of the one sample `name` whose labels include `labels`, or 0 when none. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return 0;
}
