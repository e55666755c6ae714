package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spanwatch/spanwatch/internal/rollback"
)

// prepareRollback parses --rollback, connects to the cluster and records
// the current revision before the gate waits, so that a bad target or
// missing permissions show at once (exit 3), not after the wait; the
// rollback later refuses to run if someone else deployed meanwhile (it
// would undo their change). Without --rollback it returns nil.
func (c *gateCmd) prepareRollback(ctx context.Context, stderr io.Writer) (*rollback.Prepared, error) {
	if c.rollback == "" {
		return nil, nil
	}
	target, err := rollback.ParseTarget(c.rollback, c.namespace)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	client, err := rollback.NewKubeClient(c.kubeconfig)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	p, err := rollback.New(client, slog.New(slog.NewTextHandler(stderr, nil))).Prepare(ctx, target)
	if err != nil {
		return nil, usageError{fmt.Errorf("--rollback: %w", err)}
	}
	return p, nil
}
