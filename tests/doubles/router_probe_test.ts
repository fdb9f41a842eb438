import { assertEquals } from "@std/assert";
import { Hono } from "hono";
import { countRouting } from "./router_probe.ts";

Deno.test("countRouting() counts every routed request of a fresh app, past the router's first match", async () => {
  const app = new Hono().get("/", (c) => c.text("hi")).get("/b", (c) => c.text("b"));
  const routed = countRouting(app);
  for (let i = 0; i < 3; i++) await (await app.request("/")).text();
  await (await app.request("/b")).text();
  assertEquals(routed(), 4);
});

Deno.test("countRouting() counts on an app that has routed before it was wrapped", async () => {
  const app = new Hono().get("/", (c) => c.text("hi"));
  await (await app.request("/")).text();
  const routed = countRouting(app);
  for (let i = 0; i < 2; i++) await (await app.request("/")).text();
  assertEquals(routed(), 2);
});
