import { assertEquals, assertThrows } from "@std/assert";
import { parsePrometheus, sampleValue } from "../tests/helpers/prom_parse.ts";
import { Counter, gauge, Histogram, render } from "./prom.ts";

Deno.test("render() writes counters, gauges and histograms the strict parser accepts", () => {
  const c = new Counter("t_requests_total", "Requests.", ["route", "status"]);
  c.inc({ route: "/kv/{key}", status: "200" });
  c.inc({ route: "/kv/{key}", status: "200" }, 2);
  c.inc({ route: 'we"ird\\\n', status: "500" });
  const h = new Histogram("t_seconds", "Latency.", ["route"], [0.1, 1]);
  h.observe({ route: "a" }, 0.05);
  h.observe({ route: "a" }, 0.5);
  h.observe({ route: "a" }, 5);
  const g = gauge("t_keys", "Keys.", [{ labels: { node: "n1" }, value: 7 }]);
  const families = parsePrometheus(render([c, h, g]));
  assertEquals(sampleValue(families, "t_requests_total", { status: "200" }), 3);
  assertEquals(sampleValue(families, "t_requests_total", { route: 'we"ird\\\n' }), 1);
  assertEquals(sampleValue(families, "t_seconds_bucket", { le: "0.1" }), 1);
  assertEquals(sampleValue(families, "t_seconds_bucket", { le: "1" }), 2);
  assertEquals(sampleValue(families, "t_seconds_bucket", { le: "+Inf" }), 3);
  assertEquals(sampleValue(families, "t_seconds_count"), 3);
  assertEquals(sampleValue(families, "t_seconds_sum"), 5.55);
  assertEquals(sampleValue(families, "t_keys", { node: "n1" }), 7);
});

Deno.test("the strict parser refuses samples without # TYPE, repeats and broken histograms", () => {
  assertThrows(() => parsePrometheus("x_total 1\n"), Error, "outside its family");
  assertThrows(
    () => parsePrometheus("# TYPE x counter\nx 1\nx 2\n"),
    Error,
    "series repeated",
  );
  assertThrows(() => parsePrometheus("# TYPE x counter\nx -1\n"), Error, "counter < 0");
  assertThrows(() => parsePrometheus("# TYPE x gauge\nx{a=1} 1\n"), Error, "not quoted");
  assertThrows(() => parsePrometheus("# TYPE x gauge\nx 1"), Error, "newline");
  assertThrows(
    () =>
      parsePrometheus(
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      ),
    Error,
    "cumulative",
  );
  assertThrows(
    () => parsePrometheus('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'),
    Error,
    "+Inf",
  );
  assertThrows(
    () => parsePrometheus("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n"),
    Error,
    "outside its family",
  );
});
