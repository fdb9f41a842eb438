/**
 * `deno task torture` stopped by SIGTERM in the middle of a round: every process it started is
 * gone and its cluster's directory removed (it once left both behind).
 */
import { assert, assertEquals } from "@std/assert";

const TORTURE = new URL("../tasks/torture.ts", import.meta.url).pathname;

/** The pids of `pid`'s children and the --data directories on their command lines. */
async function childrenOf(pid: number): Promise<{ pids: number[]; dirs: Set<string> }> {
  const out = await new Deno.Command("ps", { args: ["-o", "pid=,args=", "--ppid", String(pid)] })
    .output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l !== "");
  const dirs = new Set<string>();
  for (const line of lines) {
    const data = /--data (\S*\/ringkv-e2e-[^/\s]+)/.exec(line);
    if (data) dirs.add(data[1]!);
  }
  return { pids: lines.map((l) => Number(l.trim().split(" ")[0])), dirs };
}

/** Processes whose command line names `dir`. */
async function processesUsing(dir: string): Promise<string[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid=,args="] }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  return lines.filter((line) => line.includes(dir) && !line.includes(" ps -eo"));
}

async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("ps", { args: ["-o", "pid=", "-p", String(pid)] }).output();
  return new TextDecoder().decode(out.stdout).trim() !== "";
}

Deno.test("deno task torture stopped by SIGTERM stops its cluster and removes its directory", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TORTURE, "--minutes", "1"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let stopped = false;
  let exited = false;
  child.status.then(() => (exited = true));
  try {
    // The nemesis' first line: the cluster is up and a round runs.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = Date.now() + 90_000;
    while (!seen.includes("nemesis:") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert(seen.includes("nemesis:"), seen);
    // A nemesis may have a node down at this moment (killed, to be restarted): wait for all 3.
    let { pids, dirs } = await childrenOf(child.pid);
    for (const until = Date.now() + 20_000; pids.length < 3 && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 100));
      ({ pids, dirs } = await childrenOf(child.pid));
    }
    assert(pids.length >= 3, `${pids}`);
    assertEquals(dirs.size, 1, [...dirs].join());
    child.kill("SIGTERM");
    await reader.cancel();
    assertEquals((await child.status).code, 130);
    stopped = true;
    for (const pid of pids) {
      const until = Date.now() + 15_000;
      while (await alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert(!(await alive(pid)), `process ${pid} outlived the torture`);
    }
    for (const dir of dirs) {
      assert(!(await Deno.stat(dir).then(() => true, () => false)), `${dir} is left`);
      // Also a node it started after the pids above were read (a nemesis' restart).
      assertEquals(await processesUsing(dir), [], `processes outlived the torture on ${dir}`);
    }
  } finally {
    if (!stopped) {
      // SIGTERM, not SIGKILL: the torture stops its cluster first (SIGKILL would orphan it).
      if (!exited) child.kill("SIGTERM");
      await child.status;
    }
  }
});
