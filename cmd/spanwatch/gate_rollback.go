package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spanwatch/spanwatch/internal/gate"
)

// doRollback restores the previous revision of --rollback, as `kubectl
// rollout undo` does; with --dry-run it only prints the change.
func (c *gateCmd) doRollback(ctx context.Context, stderr io.Writer) error {
	target, err := gate.ParseRollbackTarget(c.rollback, c.namespace)
	if err != nil {
		return err
	}
	client, err := gate.NewKubeClient(c.kubeconfig)
	if err != nil {
		return err
	}
	r := gate.NewRollbacker(client, slog.New(slog.NewTextHandler(stderr, nil)))
	res, err := r.Rollback(ctx, target, c.dryRun)
	if err != nil {
		return err
	}
	verb := "rolled back"
	if c.dryRun {
		verb = "would roll back"
	}
	switch {
	case !res.Changed:
		fmt.Fprintf(stderr, "rollback: %s/%s already runs the template of revision %d; nothing to do\n", target.Namespace, target.Name, res.ToRevision)
	default:
		fmt.Fprintf(stderr, "rollback: %s deployment %s/%s from revision %d to %d\n%s", verb, target.Namespace, target.Name, res.FromRevision, res.ToRevision, res.Diff)
	}
	return nil
}
