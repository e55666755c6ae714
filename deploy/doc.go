// Package deploy has no code of its own. Its tests hold the packaging to the
// program it packages: the Dockerfile's Go build (run without a container
// engine), the Kubernetes manifests under deploy/kubernetes (decoded
// strictly with the k8s.io/api types, rendered like kustomize), and the
// Argo Rollouts, Flagger and Job examples under examples/, against the
// binary's flags, ports, health endpoints, configuration file and gate
// request type.
package deploy
