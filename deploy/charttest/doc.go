// Package charttest renders the Helm chart in deploy/helm/tidemark with the
// Helm library, as `helm template` does, and checks the manifests it makes:
// every one decodes strictly into its Kubernetes type, the pod is wired to
// the server's contracts (port, probes, data directory, config file, token
// files, and in scale-out mode the remote engine's flags and the state URL
// from its Secret), and the config file parses with the server's own config
// package.
//
// It is a module of its own so that Helm and its dependencies stay out of the
// server's go.mod:
//
//	cd deploy/charttest && go test ./...
package charttest
