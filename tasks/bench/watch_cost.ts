/**
 * What watchers cost writers (issue 15): PUT throughput through a proxy over 3 nodes with
 * 3 replicas, driven by wrk, with no watcher and with 100 idle watchers (a prefix nothing
 * is written under) plus 10 busy ones (every key), in interleaved rounds; prints req/s of
 * each round and the ratio of the medians.
 *
 *     deno run -A tasks/bench/watch_cost.ts [seconds per round, default 8] [rounds, default 3]
 *
 * @module
 */
import { parseWrkOutput, wrkArgs, wrkScript } from "./wrk.ts";

const SECRET = "watch-cost-secret";
const seconds = Number(Deno.args[0] ?? 8);
const rounds = Number(Deno.args[1] ?? 3);
const root = new URL("../../", import.meta.url).pathname;

interface Child {
  proc: Deno.ChildProcess;
  url: string;
}

async function spawn(script: string, args: string[]): Promise<Child> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", root + script, ...args],
    env: { RINGKV_CLUSTER_SECRET: SECRET },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (let i = 0; i < 1000; i++) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
    const m = /listening on (http:\/\/[\d.:]+)/.exec(text);
    if (m) {
      void (async () => {
        while (!(await lines.read()).done) { /* drain */ }
      })();
      return { proc, url: m[1]! };
    }
  }
  throw new Error(`Cannot start ${script}: it printed ${text}`);
}

/** Opens `n` watch streams on `prefix` and reads them until `signal` (then cancels them). */
async function watchers(url: string, prefix: string, n: number, signal: AbortSignal) {
  const opened = await Promise.all(
    Array.from({ length: n }, () =>
      fetch(`${url}/watch?prefix=${prefix}`, {
        headers: { accept: "text/event-stream" },
        signal,
      })),
  );
  for (const res of opened) {
    if (res.status !== 200) throw new Error(`Cannot watch: ${res.status} ${await res.text()}`);
    const reader = res.body!.getReader();
    signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
    void (async () => {
      for (let i = 0; i < 1e9 && !(await reader.read().catch(() => ({ done: true }))).done; i++) {
        // discard
      }
    })();
  }
}

async function putRound(url: string, script: string): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: wrkArgs(`${url}/kv/`, script, { connections: 32, threads: 2, seconds }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const result = parseWrkOutput(new TextDecoder().decode(out.stdout));
  if (result.non2xx > 0 || result.socketErrors > 0) {
    throw new Error(`PUTs failed: ${result.non2xx} not 2xx, ${result.socketErrors} socket errors`);
  }
  return result.rps;
}

const dir = await Deno.makeTempDir({ prefix: "ringkv-watch-cost-" });
const children: Child[] = [];
try {
  for (const id of ["n1", "n2", "n3"]) {
    children.push(
      await spawn("node/main.ts", ["--id", id, "--port", "0", "--data", `${dir}/${id}`]),
    );
  }
  const urls = children.map((c) => c.url).join(",");
  const proxy = await spawn("proxy/main.ts", [
    ...["--port", "0", "--data", `${dir}/p`, "--nodes", urls, "--replicas", "3"],
  ]);
  children.push(proxy);
  const script = `${dir}/put.lua`;
  await Deno.writeTextFile(
    script,
    wrkScript({ prefix: "bench/", keys: 10_000, putRatio: 1, valueBytes: 100 }),
  );
  const none: number[] = [];
  const watched: number[] = [];
  for (let r = 0; r < rounds; r++) {
    none.push(await putRound(proxy.url, script));
    const stop = new AbortController();
    await watchers(proxy.url, "idle-nothing-here/", 100, stop.signal);
    await watchers(proxy.url, "bench/", 10, stop.signal);
    watched.push(await putRound(proxy.url, script));
    stop.abort();
    await new Promise((r) => setTimeout(r, 2000)); // the proxy sees the watchers go
    console.log(
      `round ${r + 1}: none ${none[r]!.toFixed(0)} req/s, watched ${watched[r]!.toFixed(0)} req/s`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `PUT req/s median: none ${median(none).toFixed(0)}, 100 idle + 10 busy watchers ${
      median(watched).toFixed(0)
    } (ratio ${(median(watched) / median(none)).toFixed(2)})`,
  );
} finally {
  for (const c of children.reverse()) {
    c.proc.kill("SIGTERM");
    await c.proc.status;
  }
  await Deno.remove(dir, { recursive: true });
}
