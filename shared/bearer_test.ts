import { assert, assertEquals, assertMatch } from "@std/assert";
import { bearerRefusal } from "./bearer.ts";

const TOKEN = "s3cret-token-value";

Deno.test("bearerRefusal() accepts the right token, case-insensitive scheme, spaces around", () => {
  for (const h of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `  Bearer   ${TOKEN} `]) {
    assertEquals(bearerRefusal(h, TOKEN, "admin"), undefined, h);
  }
});

Deno.test("bearerRefusal() tells missing, malformed and wrong apart, says where the token is, leaks none", () => {
  const missing = bearerRefusal(undefined, TOKEN, "admin")!;
  const malformed = bearerRefusal("nope", TOKEN, "admin")!;
  const wrong = bearerRefusal("Bearer not-it", TOKEN, "admin")!;
  const messages = [missing, malformed, wrong].map((e) => e.message);
  assertEquals(new Set(messages).size, 3, "three different messages");
  assertMatch(missing.message, /send Authorization: Bearer <admin token>/);
  assertMatch(malformed.message, /not of the form "Bearer <admin token>"/);
  assertMatch(wrong.message, /the admin token sent is wrong/);
  for (const e of [missing, malformed, wrong]) {
    assertEquals([e.status, e.code], [401, "unauthorized"]);
    assertMatch(e.message, /RINGKV_ADMIN_TOKEN.*data\/admin-token/);
    assert(!e.message.includes(TOKEN) && !e.message.includes("not-it"));
  }
  assertMatch(bearerRefusal("x", TOKEN, "client")!.message, /RINGKV_CLIENT_TOKEN/);
  const cluster = bearerRefusal("Bearer x", TOKEN, "cluster")!.message;
  assertMatch(cluster, /RINGKV_CLUSTER_SECRET.*data\/cluster-secret/);
  assertEquals(bearerRefusal("Bearer", TOKEN, "client")!.message.includes("not of the form"), true);
});
