/**
 * Where the proxy's long-lived allocations come from under `cpu_rig.ts` (docs/performance.md,
 * "The proxy's write path: fewer objects per PUT"): runs the rig for the checkout at ROOT with
 * the proxy under the V8 inspector, samples its allocations over wrk's run (V8's sampling heap
 * profiler, keeping objects a full collection freed but not those a scavenge freed), forces two
 * scavenges at the end so that what died young drops out, and prints the allocating functions
 * and call paths by bytes: what was promoted or pretenured, not all that was allocated.
 *
 *     deno run -A tasks/bench/promoted_sites.ts put 3      # the rig's arguments
 *     ROOT=/tmp/old TOP=30 DEPTH=4 deno run -A tasks/bench/promoted_sites.ts put 3
 *
 * @module
 */
import { freePort } from "./processes.ts";

/** One node of V8's sampling heap profile. */
interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const top = Number(Deno.env.get("TOP") ?? 25);
const depth = Number(Deno.env.get("DEPTH") ?? 3);

/** Waits up to `ms` for `check` to answer something. */
async function until<T>(ms: number, check: () => Promise<T | undefined>): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    const got = await check().catch(() => undefined);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Cannot watch the rig: nothing came within ${ms} ms`);
}

/** A CDP session over the inspector's WebSocket. */
async function inspect(port: number) {
  const url = await until(60_000, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/json/list`, {
      signal: AbortSignal.timeout(1000),
    });
    const list = await res.json() as { webSocketDebuggerUrl: string }[];
    return list[0]?.webSocketDebuggerUrl;
  });
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    waiting.get(msg.id)?.(msg.result);
    waiting.delete(msg.id);
  };
  let id = 0;
  const send = (method: string, params = {}) =>
    new Promise<unknown>((resolve) => {
      waiting.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

/** Bytes by function and by call path (`depth` frames, the allocating one last). */
function summarize(root: SampleNode): void {
  const bySite = new Map<string, number>();
  const byPath = new Map<string, number>();
  let total = 0;
  const walk = (n: SampleNode, path: string[]) => {
    const f = n.callFrame;
    const name = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}`;
    const here = [...path, name];
    if (n.selfSize > 0) {
      total += n.selfSize;
      bySite.set(name, (bySite.get(name) ?? 0) + n.selfSize);
      const key = here.slice(-depth).join(" > ");
      byPath.set(key, (byPath.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(root, []);
  console.log(`sampled long-lived bytes: ${(total / 1e6).toFixed(1)} MB`);
  for (const [title, map] of [["allocating function", bySite], ["call path", byPath]] as const) {
    console.log(`-- by ${title}`);
    for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(100 * v / total).toFixed(1).padStart(5)} %  ${k}`);
    }
  }
}

const port = freePort();
const dir = await Deno.makeTempDir({ prefix: "ringkv-sites-" });
const starts = `${dir}/wrk-starts`;
const rig = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL("./cpu_rig.ts", import.meta.url).pathname, ...Deno.args],
  env: {
    PROXY_FLAGS: `--inspect=127.0.0.1:${port} --v8-flags=--expose-gc`,
    WRK_STARTS: starts,
  },
  stdout: "inherit",
  stderr: "null", // the inspector's banner
}).spawn();
let exited = false;
const status = rig.status.finally(() => exited = true);
try {
  const cdp = await inspect(port);
  try {
    await cdp.send("HeapProfiler.enable");
    await until(600_000, () => Deno.stat(starts).then(() => true));
    await cdp.send("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    });
    await new Promise((r) => setTimeout(r, 5_500)); // wrk's 5 s
    await cdp.send("Runtime.evaluate", {
      expression: "gc({ type: 'minor' }); gc({ type: 'minor' })",
    });
    const { profile } = await cdp.send("HeapProfiler.stopSampling") as {
      profile: { head: SampleNode };
    };
    summarize(profile.head);
  } finally {
    cdp.close(); // the proxy waits for its debugger to leave before it exits
  }
  await status;
} finally {
  if (!exited) rig.kill("SIGINT"); // the rig stops the servers it started
  await status;
  await Deno.remove(dir, { recursive: true });
}
