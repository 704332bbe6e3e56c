// Package alerts holds the example alert rules that the documentation
// shows (docs/alerts.md), one rule group per file as the ruler API takes
// it, each with promtool unit tests (NAME.test.yml) that its tests run
// with Prometheus's own promtool.
package alerts
