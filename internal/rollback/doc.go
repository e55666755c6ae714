// Package rollback rolls a Kubernetes Deployment back to its previous
// revision, the way `kubectl rollout undo deployment/NAME` (k8s.io/kubectl,
// pkg/polymorphichelpers/rollback.go, DeploymentRollbacker) does it: the
// previous revision's pod template is read from the Deployment's ReplicaSet
// history and written back into spec.template with a JSON patch. The
// deployment controller then rolls the pods as for any other template
// change.
//
// It owns every use of client-go. internal/gate only declares the small
// interface it calls after a regression (gate.Rollback); the CLI wires a
// Prepared rollback in, so that the gate, the compare API and the web server
// do not depend on Kubernetes client code.
package rollback
