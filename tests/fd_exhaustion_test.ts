/**
 * A process out of file descriptors keeps serving once they are free again: a node run
 * under `prlimit --nofile=64` gets more connections than it can accept (accept fails
 * with EMFILE, which ends Deno.serve's accept loop; shared/keep_serving.ts starts it again,
 * and connections made in between are refused or reset), they close, and a new request is
 * answered. Skipped where `prlimit` is missing.
 */
import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);

async function hasPrlimit(): Promise<boolean> {
  try {
    const out = await new Deno.Command("prlimit", { args: ["--version"], stdout: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "a node that ran out of file descriptors accepts connections again once they are freed",
  ignore: !(await hasPrlimit()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ringkv-fd-" });
    let node: ServerProcess | undefined;
    const conns: Deno.Conn[] = [];
    try {
      node = await spawnServer({
        script: NODE,
        args: ["--id", "n1", "--port", "0", "--data", join(dir, "n1")],
        wrapper: ["prlimit", "--nofile=64"],
      });
      // More connections than the node has descriptors: some accepts fail with EMFILE.
      for (let i = 0; i < 100; i++) {
        try {
          conns.push(await Deno.connect({ hostname: "127.0.0.1", port: node.port }));
        } catch (err) {
          const between = err instanceof Deno.errors.ConnectionRefused ||
            err instanceof Deno.errors.ConnectionReset;
          if (!between) throw err;
        }
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const conn of conns.splice(0)) conn.close();
      // Bounded: the node serves again 100 ms after its accept failed; give it a few seconds.
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const res = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(2000) })
          .catch(() => null);
        status = res?.status ?? 0;
        await res?.body?.cancel();
      }
      assertEquals(status, 200);
    } finally {
      for (const conn of conns) conn.close();
      await node?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
