/**
 * `deno task openapi`: writes docs/openapi.json from proxy/http/openapi.ts (a test checks
 * that the two agree).
 *
 * @module
 */
import { OPENAPI } from "../proxy/http/openapi.ts";

const file = new URL("../docs/openapi.json", import.meta.url);
await Deno.writeTextFile(file, JSON.stringify(OPENAPI, null, 2) + "\n");
console.log(`wrote ${file.pathname}`);
