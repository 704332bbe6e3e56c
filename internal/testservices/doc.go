// Package testservices starts the real services the scale-out tests run
// against, on loopback, from the tests themselves: PostgreSQL from Debian's
// postgresql package (Postgres) and Cortex built from the Go module proxy
// (Cortex, CortexBinary).
//
// Every process is started under a small watchdog shell that holds the read
// end of a pipe from the test binary: when the test's cleanup closes the pipe,
// or the test binary dies without running its cleanups (a timeout, a panic, a
// kill), the watchdog stops the service and removes its directory, so no
// server outlives the tests that started it.
//
// What this package's tests establish about Cortex v1.21.1 as started here
// (the remote storage backend relies on it):
//   - Remote write 1.0 at /api/v1/push; 2.0 is refused with 415 unless
//     -distributor.remote-writev2-enabled. OTLP/HTTP at
//     /api/v1/otlp/v1/metrics (service.name becomes job). Remote read at
//     /prometheus/api/v1/read, and the query API at /prometheus/api/v1/....
//   - A request without X-Scope-OrgID: 401 "no org id". Tenants do not see
//     each other's series.
//   - A sample is queryable as soon as its push is answered, by a query
//     that names its time: an instant query without time is evaluated at
//     the start of the current second (the query frontend truncates now),
//     before a sample written within that second. A sample older than
//     the out-of-order window: 400 "too old sample" (without the window:
//     400 "out of bounds"); a client must not retry it.
//   - A tenant over its ingestion rate: 429; over its series limit: 400
//     "per-user series limit ... exceeded" (a per-tenant global series limit
//     needs distributor.shard_by_all_labels). A bad query: 400 with
//     Prometheus's error JSON (bad_data); a query over the tenant's series
//     limit: 422 (execution).
package testservices
