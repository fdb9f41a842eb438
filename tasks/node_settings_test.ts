import { assert, assertEquals } from "@std/assert";
import { NODE_ENV, NODE_V8_FLAGS } from "./node_settings.ts";

const root = new URL("../", import.meta.url);

Deno.test("deno task node runs the node with the memory settings the other launchers use", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string = config.tasks.node;
  const words = task.split(/\s+/);
  assert(words.includes(NODE_V8_FLAGS), `deno.json's node task lacks ${NODE_V8_FLAGS}: ${task}`);
  const env = words.slice(0, words.indexOf("deno")).map((w) => w.split("="));
  assertEquals(Object.fromEntries(env), NODE_ENV, `deno.json's node task: ${task}`);
});

Deno.test("deno task cluster, the bench and the compiled node pass the same V8 flags", async () => {
  for (const file of ["tasks/cluster.ts", "tasks/bench/processes.ts", "tasks/compile.ts"]) {
    const text = await Deno.readTextFile(new URL(file, root));
    assert(text.includes("NODE_V8_FLAGS"), `${file} does not pass NODE_V8_FLAGS`);
  }
  for (const file of ["tasks/cluster.ts", "tasks/bench/processes.ts"]) {
    const text = await Deno.readTextFile(new URL(file, root));
    assert(text.includes("NODE_ENV"), `${file} does not pass NODE_ENV`);
  }
});
