/**
 * What header tricklers cost a proxy on `Deno.serve`, which has no deadline on request heads
 * (denoland/deno#3515; docs/security.md): starts a node and a proxy (1 replica) in a temp
 * dir, measures normal GETs with wrk, then opens `N` connections that each send a partial
 * request head and one more header byte every second, and measures again while they are
 * held: connections the proxy holds (its open descriptors), its RSS per held connection,
 * the CPU it spends on them while idle, and the GETs' requests/s and p99 meanwhile.
 * Linux only; needs wrk.
 *
 *     deno run -A tasks/bench/trickle_cost.ts [N=5000] [HOLD_SECONDS=10]
 *
 * @module
 */
const N = Number(Deno.args[0] ?? 5000);
const HOLD_SECONDS = Number(Deno.args[1] ?? 10);
const root = new URL("../..", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "ringkv-trickle-" });
const children: Deno.ChildProcess[] = [];
const encoder = new TextEncoder();

/** Starts a server script and waits for its `listening on URL` line. */
async function start(script: string, args: string[]): Promise<[Deno.ChildProcess, string]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}${script}`, ...args],
    env: { RINGKV_CLUSTER_SECRET: "trickle" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.push(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (let i = 0; i < 1000 && !/listening on (\S+)/.test(text); i++) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited before listening`);
    text += value;
  }
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return [child, /listening on (\S+)/.exec(text)![1]!];
}

async function procStats(pid: number) {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  return {
    rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)![1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
    fds,
  };
}

/** wrk -t1 -c8 for 3 s on one key: requests/s and p99 in ms. */
async function wrkGet(url: string): Promise<{ rps: number; p99: string }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c8", "-d3s", "--latency", `${url}/kv/k1`],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)![1]),
    p99: /99%\s+(\S+)/.exec(text)![1]!,
  };
}

try {
  const [, nodeUrl] = await start("node/main.ts", ["--port", "0", "--data", `${dir}/n1`]);
  const [proxy, url] = await start("proxy/main.ts", [
    ...["--port", "0", "--data", `${dir}/proxy`, "--nodes", nodeUrl, "--replicas", "1"],
  ]);
  const put = await fetch(`${url}/kv/k1`, { method: "PUT", body: "x".repeat(100) });
  await put.body?.cancel();
  const port = Number(new URL(url).port);
  await wrkGet(url); // warm-up: the first run pays for JIT and the first connections
  const quiet = await wrkGet(url);
  const before = await procStats(proxy.pid);

  const conns: Deno.Conn[] = [];
  for (let i = 0; i < N; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(`GET /kv/k1 HTTP/1.1\r\nHost: x\r\nX-Slow: `));
    conns.push(conn);
  }
  const held = await procStats(proxy.pid);
  for (let s = 0; s < HOLD_SECONDS; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    await Promise.all(conns.map((c) => c.write(encoder.encode("a")).catch(() => 0)));
  }
  const after = await procStats(proxy.pid);
  const loaded = await wrkGet(url);
  const still = await procStats(proxy.pid);
  for (const conn of conns) conn.close();

  const perConn = (still.rssKiB - before.rssKiB) / N;
  const idleCpu = (after.cpuSeconds - held.cpuSeconds) / HOLD_SECONDS;
  console.log(`proxy on Deno.serve, ${N} header tricklers held ${HOLD_SECONDS} s:`);
  console.log(`  connections held: ${still.fds - before.fds} more descriptors open`);
  console.log(
    `  RSS: ${before.rssKiB} KiB -> ${still.rssKiB} KiB (${perConn.toFixed(1)} KiB each)`,
  );
  console.log(`  proxy CPU while they trickle: ${(idleCpu * 100).toFixed(1)} % of a core`);
  console.log(`  GET /kv/k1 quiet:  ${quiet.rps} req/s, p99 ${quiet.p99}`);
  console.log(`  GET /kv/k1 held:   ${loaded.rps} req/s, p99 ${loaded.p99}`);
} finally {
  for (const child of children.toReversed()) {
    child.kill("SIGTERM");
    await child.status;
  }
  await Deno.remove(dir, { recursive: true });
}
