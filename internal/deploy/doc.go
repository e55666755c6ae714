// Package deploy finds deployments in span metrics: the first appearance of
// a new service.version per service (and namespace and
// deployment.environment), the versions it replaces, and the rollout shape
// as it unfolds (canary, rolling, switch, rollback). It also holds the rule
// that chooses the windows each event's verdict compares.
//
// The decision logic (Tracker, Event.Progress, the verdict rule) is pure:
// it takes what a look read and the look's time, and does no I/O. Reader
// builds the PromQL those looks need and runs it through a query function,
// so detection works the same on the embedded TSDB and on a remote
// Prometheus-compatible store. Record reads and writes the durable state.
// Running the gate for each event is the caller's (internal/app).
package deploy
