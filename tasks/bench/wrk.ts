/**
 * The bench's load generator side: wrk Lua scripts (GET, PUT or a mix over random keys,
 * with a `done` hook that prints one machine-readable line) and the parser of that line.
 * A script speaks ringkv's `/kv/{key}` or etcd's JSON gateway (`POST /v3/kv/range` and
 * `/v3/kv/put`, base64 keys and values). Pure: building text and reading text, no processes.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseWrkOutput, wrkScript } from "./wrk.ts";
 * const lua = wrkScript({ prefix: "k", keys: 10, putRatio: 0, valueBytes: 100 });
 * assert(lua.includes('wrk.format("GET"'));
 * const line = 'RINGKV_RESULT {"requests":100,"durationUs":1000000,"p50Us":500,' +
 *   '"p99Us":900,"maxUs":1200,"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0}}';
 * assert(parseWrkOutput(line).rps === 100);
 * ```
 */

/** What a wrk script asks for. */
export interface WrkScriptOptions {
  /** Keys are `<prefix><6-digit number>`, numbers 0 to keys-1, picked at random. */
  prefix: string;
  keys: number;
  /** Share of requests that are PUTs (0: all GET, 1: all PUT, 0.1: the 90/10 mix). */
  putRatio: number;
  /** Bytes of each PUT body. */
  valueBytes: number;
  /** Path before the key (default `/kv/`; ringkv's API only). */
  pathBase?: string;
  /**
   * `kv` (default): `GET`/`PUT /kv/{key}`. `etcd`: `POST /v3/kv/range` (linearizable, etcd's
   * default) and `POST /v3/kv/put` with JSON bodies of base64 keys and values.
   */
  api?: "kv" | "etcd";
  /** Extra request headers (e.g. the cluster secret when hitting a node directly). */
  headers?: Record<string, string>;
  /**
   * Keys in order instead of at random, thread t of n taking keys t, t + n, ... (the
   * warm-up's pass over every key); needs `threads`.
   */
  sequential?: { threads: number };
}

/** One wrk run, as read from its output. */
export interface WrkResult {
  requests: number;
  seconds: number;
  /** Requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers that were not 2xx or 3xx. */
  non2xx: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
  /** CPU seconds wrk itself used, every thread (its `done` hook's `os.clock()`). */
  cpuSeconds?: number;
}

/** The marker of the line the scripts' `done` hook prints. */
export const RESULT_MARKER = "RINGKV_RESULT ";

function luaString(text: string): string {
  return JSON.stringify(text); // a JSON string of printable ASCII is a valid Lua string
}

function luaHeaders(headers: Record<string, string>): string {
  const pairs = Object.entries(headers).map(([k, v]) => `[${luaString(k)}] = ${luaString(v)}`);
  return `{ ${pairs.join(", ")} }`;
}

const KV_REQUEST = `request = function()
  local path = base .. prefix .. string.format("%06d", key_number())
  if put_ratio > 0 and math.random() < put_ratio then
    return wrk.format("PUT", path, put_headers, body)
  end
  return wrk.format("GET", path, get_headers)
end
`;

/** etcd's gateway takes keys and values as base64 (LuaJIT has no encoder of its own). */
const ETCD_REQUEST =
  `local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function sextet(n)
  return alphabet:sub(n + 1, n + 1)
end
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    out[#out + 1] = sextet(math.floor(n / 262144) % 64) .. sextet(math.floor(n / 4096) % 64) ..
      (b and sextet(math.floor(n / 64) % 64) or "=") .. (c and sextet(n % 64) or "=")
  end
  return table.concat(out)
end
local body64 = base64(body)

request = function()
  local key64 = base64(prefix .. string.format("%06d", key_number()))
  if put_ratio > 0 and math.random() < put_ratio then
    return wrk.format("POST", "/v3/kv/put", json_headers,
      '{"key":"' .. key64 .. '","value":"' .. body64 .. '"}')
  end
  return wrk.format("POST", "/v3/kv/range", json_headers, '{"key":"' .. key64 .. '"}')
end
`;

/** The Lua script of one wrk case. */
export function wrkScript(o: WrkScriptOptions): string {
  if (!Number.isInteger(o.keys) || o.keys < 1) throw new RangeError(`keys must be >= 1`);
  if (o.putRatio < 0 || o.putRatio > 1) throw new RangeError(`putRatio must be 0 to 1`);
  if (o.sequential !== undefined && !(o.sequential.threads >= 1)) {
    throw new RangeError(`sequential.threads must be >= 1`);
  }
  const headers = o.headers ?? {};
  return `-- written by deno task bench (tasks/bench/wrk.ts)
local keys = ${o.keys}
local prefix = ${luaString(o.prefix)}
local base = ${luaString(o.pathBase ?? "/kv/")}
local put_ratio = ${o.putRatio}
local body = string.rep("v", ${o.valueBytes})
local get_headers = ${luaHeaders(headers)}
local put_headers = ${luaHeaders({ ...headers, "Content-Type": "text/plain" })}
local json_headers = ${luaHeaders({ ...headers, "Content-Type": "application/json" })}
local next_id = 1
local threads = ${o.sequential?.threads ?? 0}
local sent = 0
local my_id = 1

setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

init = function(args)
  my_id = tonumber(wrk.thread:get("id")) or 1
  math.randomseed(os.time() * 100 + my_id)
end

local function key_number()
  if threads == 0 then return math.random(0, keys - 1) end
  local n = (my_id - 1 + sent * threads) % keys
  sent = sent + 1
  return n
end

${o.api === "etcd" ? ETCD_REQUEST : KV_REQUEST}
done = function(summary, latency, requests)
  local e = summary.errors
  -- os.clock(): the CPU time wrk's whole process (every thread) has used so far.
  io.write(string.format(
    '${RESULT_MARKER}{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"cpuSeconds":%.3f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, os.clock()))
end
`;
}

/** Reads the result line of a wrk run; throws when there is none (wrk failed). */
export function parseWrkOutput(output: string): WrkResult {
  const line = output.split("\n").find((l) => l.startsWith(RESULT_MARKER));
  if (line === undefined) {
    throw new Error(`Cannot read wrk's output: no ${RESULT_MARKER.trim()} line in:\n${output}`);
  }
  const r = JSON.parse(line.slice(RESULT_MARKER.length));
  const seconds = r.durationUs / 1e6;
  const e = r.errors;
  return {
    requests: r.requests,
    seconds,
    rps: seconds > 0 ? r.requests / seconds : 0,
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    maxMs: r.maxUs / 1000,
    non2xx: e.status,
    socketErrors: e.connect + e.read + e.write + e.timeout,
    ...(typeof r.cpuSeconds === "number" ? { cpuSeconds: r.cpuSeconds } : {}),
  };
}

/** The wrk command line of one run. */
export function wrkArgs(
  url: string,
  script: string,
  o: { connections: number; threads: number; seconds: number },
): string[] {
  return [
    "-t",
    String(o.threads),
    "-c",
    String(o.connections),
    "-d",
    `${o.seconds}s`,
    "--timeout",
    "5s",
    "-s",
    script,
    url,
  ];
}
