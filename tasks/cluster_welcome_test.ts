import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { kvLine } from "./cluster_welcome.ts";

Deno.test("kvLine names the proxy's URL and the token file only when kv would not find them", () => {
  const deno = "/usr/bin/deno";
  assertEquals(
    kvLine("http://127.0.0.1:8080", "./data", false, deno),
    "/usr/bin/deno task kv status",
  );
  assertEquals(
    kvLine("http://127.0.0.1:8080", "data", false, deno),
    "/usr/bin/deno task kv status",
  );
  assertEquals(
    kvLine("http://127.0.0.1:9080", "/tmp/my data", false, deno),
    `RINGKV_URL=http://127.0.0.1:9080 RINGKV_ADMIN_TOKEN="$(cat '/tmp/my data/admin-token')" /usr/bin/deno task kv status`,
  );
  assertEquals(
    kvLine("http://127.0.0.1:9080", "/tmp/x", true, deno),
    "RINGKV_URL=http://127.0.0.1:9080 /usr/bin/deno task kv status",
    "a token from RINGKV_ADMIN_TOKEN: kv reads it too",
  );
  assert(
    kvLine("http://127.0.0.1:8080", "elsewhere", false, deno).includes(
      `"$(cat ${join(Deno.cwd(), "elsewhere", "admin-token")})"`,
    ),
    "a relative --data is named absolute",
  );
  assertEquals(
    kvLine("http://127.0.0.1:8080", "./data", false, "/root/.npm/_npx/1/node_modules/deno/deno"),
    "npx --yes deno@2.9.6 task kv status",
  );
});
