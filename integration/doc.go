// Package integration runs Tidemark, built from this repository, against the
// code of the tools that use it: Argo Rollouts' prometheus metric provider
// and notifications, Flagger's request style and event webhook, and checks
// that every manifest under examples/ is a valid Kubernetes object. It is its
// own module so that the Kubernetes and Argo Rollouts dependencies stay out
// of the server's go.mod.
package integration
