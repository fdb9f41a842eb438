import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { kvLine } from "./cluster_welcome.ts";

Deno.test("kvLine names the proxy's URL and the token file only when kv would not find them, and the project's deno.json", () => {
  const [deno, config] = ["/usr/bin/deno", "/src/ringkv/deno.json"];
  const line = (url: string, data: string, fromEnv = false, exec = deno) =>
    kvLine(url, data, fromEnv, exec, config);
  const status = "/usr/bin/deno task --config /src/ringkv/deno.json kv status";
  assertEquals(line("http://127.0.0.1:8080", "./data"), status);
  assertEquals(line("http://127.0.0.1:8080", "data"), status);
  assertEquals(
    line("http://127.0.0.1:9080", "/tmp/my data"),
    `RINGKV_URL=http://127.0.0.1:9080 RINGKV_ADMIN_TOKEN="$(cat '/tmp/my data/admin-token')" ${status}`,
  );
  assertEquals(
    line("http://127.0.0.1:9080", "/tmp/x", true),
    `RINGKV_URL=http://127.0.0.1:9080 ${status}`,
    "a token from RINGKV_ADMIN_TOKEN: kv reads it too",
  );
  assert(
    line("http://127.0.0.1:8080", "elsewhere").includes(
      `"$(cat ${join(Deno.cwd(), "elsewhere", "admin-token")})"`,
    ),
    "a relative --data is named absolute",
  );
  assertEquals(
    line("http://127.0.0.1:8080", "./data", false, "/root/.npm/_npx/1/node_modules/deno/deno"),
    "npx --yes deno@2.9.6 task --config /src/ringkv/deno.json kv status",
  );
});
