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
package testservices
