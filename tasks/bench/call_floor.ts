/**
 * The floor of one proxy → node call, and what each part of ours adds: the client's CPU per
 * call (this process, `process.cpuUsage`) and the server's (a child `Deno.serve`, read from
 * /proc), for ways of making the same call, taken in turn, 3 rounds. The bodies are a
 * 3-replica PUT's accept batch (20 entries of 100 B, base64) and its answer.
 *
 *     deno run -A tasks/bench/call_floor.ts [CALLS]
 *     ROUNDS=7 ONLY="init+timer;init, no signal" deno run -A tasks/bench/call_floor.ts
 *
 * Linux only (the server's CPU comes from /proc).
 *
 * @module
 */
import process from "node:process";
import { CallDeadlines } from "../../proxy/nodes/call_deadlines.ts";
import { sendToNode } from "../../proxy/nodes/node_client.ts";

const LANES = 3; // the proxy keeps one call in flight per node and kind
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);

function acceptBody(): string {
  const v = btoa("v".repeat(100));
  const entries = Array.from({ length: 20 }, (_, i) => ({
    k: `k${String(i * 37).padStart(6, "0")}`,
    v,
    t: "application/octet-stream",
    ver: "019aa1b2c3d4-0003-p1a2b3",
    h: 123456789 + i,
  }));
  return JSON.stringify({ entries });
}
const ANSWER = JSON.stringify({ results: Array.from({ length: 20 }, () => ({ ok: true })) });

function serve(): void {
  Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => console.log(a.port) },
    async (r) => {
      JSON.parse(await r.text());
      return new Response(ANSWER, { headers: { "content-type": "application/json" } });
    },
  );
}

type Call = (url: string, body: string) => Promise<unknown>;

const HEADERS = {
  "x-ringkv-epoch": "3",
  "content-type": "application/json",
  authorization: "Bearer 0123456789abcdef0123456789abcdef",
  "x-ringkv-incarnation": "0123456789abcdef",
};

/** A signal no timer aborts: what a signal costs fetch, without any timer. */
const shared = new AbortController();

/** One signal per 50 ms slot, aborted by one timer 2 s after the slot ends. */
let slot: { ends: number; abort: AbortController } | undefined;
function slotSignal(): AbortSignal {
  const now = performance.now();
  if (slot === undefined || now >= slot.ends) {
    const abort = new AbortController();
    slot = { ends: now + 50, abort };
    Deno.unrefTimer(setTimeout(() => abort.abort(), 2050));
  }
  return slot.abort.signal;
}

const deadlines = new CallDeadlines(2000);

const VARIANTS: Record<string, Call> = {
  /** proxy/nodes/node_client.ts sendToNode of this tree, with shared deadlines. */
  "sendToNode now": async (url, body) => {
    const call = { method: "POST", url, headers: HEADERS, body, timeoutMs: 2000, deadlines };
    return JSON.parse((await sendToNode({ fetch }, call)).text);
  },
  /** proxy/nodes/node_client.ts sendToNode at 70f1f7c. */
  "request+timer": async (url, body) => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 2000);
    try {
      const signal = abort.signal;
      const res = await fetch(new Request(url, { method: "POST", headers: HEADERS, body, signal }));
      return JSON.parse(await res.text());
    } finally {
      clearTimeout(timer);
    }
  },
  "init+timer": async (url, body) => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 2000);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: HEADERS,
        body,
        signal: abort.signal,
      });
      return JSON.parse(await res.text());
    } finally {
      clearTimeout(timer);
    }
  },
  "init+AbortSignal.timeout": async (url, body) => {
    const signal = AbortSignal.timeout(2000);
    const res = await fetch(url, { method: "POST", headers: HEADERS, body, signal });
    return JSON.parse(await res.text());
  },
  "init+shared signal": async (url, body) => {
    const res = await fetch(url, { method: "POST", headers: HEADERS, body, signal: shared.signal });
    return JSON.parse(await res.text());
  },
  "init+slot signal": async (url, body) => {
    const signal = slotSignal();
    const res = await fetch(url, { method: "POST", headers: HEADERS, body, signal });
    return JSON.parse(await res.text());
  },
  "init, no signal": async (url, body) => {
    const res = await fetch(url, { method: "POST", headers: HEADERS, body });
    return JSON.parse(await res.text());
  },
  "init, no signal, json()": async (url, body) => {
    const res = await fetch(url, { method: "POST", headers: HEADERS, body });
    return await res.json();
  },
  "init, no signal, bytes": async (url, body) => {
    const res = await fetch(url, { method: "POST", headers: HEADERS, body });
    return JSON.parse(new TextDecoder().decode(await res.arrayBuffer()));
  },
  "init, no signal, 1 header": async (url, body) => {
    const res = await fetch(url, { method: "POST", headers: { "x-ringkv-epoch": "3" }, body });
    return JSON.parse(await res.text());
  },
};

async function serverCpu(pid: number): Promise<number> {
  const line = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = line.slice(line.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000; // µs
}

async function run(call: Call, url: string, body: string, calls: number, pid: number) {
  const s0 = await serverCpu(pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: LANES }, async () => {
    for (let i = 0; i < calls / LANES; i++) await call(url, body);
  }));
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  const s = await serverCpu(pid) - s0;
  return { client: (c.user + c.system) / calls, server: s / calls, wall: wall * 1000 / calls };
}

async function main(): Promise<void> {
  const calls = Number(Deno.args[0] ?? 6000);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "serve"],
    stdout: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = Number((await reader.read()).value);
    const url = `http://127.0.0.1:${port}/internal/accept`;
    const body = acceptBody();
    console.log(`request ${body.length} B, answer ${ANSWER.length} B, ${LANES} lanes`);
    const out = new Map<string, { client: number; server: number; wall: number }[]>();
    await run(VARIANTS["init, no signal"]!, url, body, 1000, child.pid); // warm-up
    const only = Deno.env.get("ONLY")?.split(";");
    const chosen = Object.entries(VARIANTS).filter(([name]) => only?.includes(name) ?? true);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, call] of chosen) {
        out.set(name, [...(out.get(name) ?? []), await run(call, url, body, calls, child.pid)]);
      }
    }
    const med = (xs: number[]) => xs.toSorted((a, b) => a - b)[ROUNDS >> 1]!.toFixed(1);
    // Rounds are taken in turn, so a round's difference to the first variant pairs them.
    const first = [...out.values()][0]!;
    for (const [name, rs] of out) {
      const diff = med(rs.map((r, i) => r.client - first[i]!.client));
      console.log(
        `${name.padEnd(28)} client ${med(rs.map((r) => r.client))} µs ` +
          `(${rs.map((r) => r.client.toFixed(0)).join("/")}; paired vs first ${diff}), server ${
            med(rs.map((r) => r.server))
          } µs, wall ${med(rs.map((r) => r.wall))} µs per call`,
      );
    }
  } finally {
    child.kill();
    await child.status;
  }
}

if (Deno.args[0] === "serve") serve();
else await main();
