package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spanwatch/spanwatch/internal/gate"
)

// rollbackPlan is --rollback prepared before the gate waits, so that a bad
// target or missing permissions show at once (exit 3), not after the wait.
type rollbackPlan struct {
	r      *gate.Rollbacker
	target gate.RollbackTarget
}

// prepareRollback parses --rollback, connects to the cluster and records
// the current revision: the rollback later refuses to run if someone else
// deployed meanwhile (it would undo their change).
func (c *gateCmd) prepareRollback(ctx context.Context, stderr io.Writer) (*rollbackPlan, error) {
	if c.rollback == "" {
		return nil, nil
	}
	target, err := gate.ParseRollbackTarget(c.rollback, c.namespace)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	client, err := gate.NewKubeClient(c.kubeconfig)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	r := gate.NewRollbacker(client, slog.New(slog.NewTextHandler(stderr, nil)))
	rev, err := r.CurrentRevision(ctx, target)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	target.ExpectRevision = rev
	return &rollbackPlan{r: r, target: target}, nil
}

// run restores the previous revision, as `kubectl rollout undo` does; with
// --dry-run it only prints the change.
func (p *rollbackPlan) run(ctx context.Context, dryRun bool, stderr io.Writer) error {
	res, err := p.r.Rollback(ctx, p.target, dryRun)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rollback: %s\n", res.String())
	return nil
}
