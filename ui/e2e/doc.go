// Package e2e holds the browser tests of Tidemark's web UI: the real
// binary, driven in headless Chromium through the DevTools protocol. It is
// a module of its own so that the browser driver stays out of the server's
// dependencies.
package e2e
