// The baseline of "status at the edge" (BENCHMARKS.md): a worker that answers every request with
// a constant JSON body the size of a status answer, with the same headers as the real worker's
// status answers. Served by serve.mjs in the same workerd setup as the real worker.
const BODY = JSON.stringify({ position: 1234567, version: 1790000000123, next_poll_ms: 5000 });
const HEADERS = {
  "content-type": "application/json",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-anteroom-age-ms": "512",
};

export default {
  fetch() {
    return new Response(BODY, { headers: HEADERS });
  },
};
